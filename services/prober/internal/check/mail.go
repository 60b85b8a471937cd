package check

// mailCheckers are the checks of mail servers and FTP.
var mailCheckers = map[string]checker{}
