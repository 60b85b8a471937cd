package check

// netCheckers are the checks of DNS, databases and ICMP.
var netCheckers = map[string]checker{
	"dns":        dnsCheck,
	"mysql":      mysqlCheck,
	"postgres":   postgresCheck,
	"postgresql": postgresCheck,
	"icmp":       icmpCheck,
}
