(function () {
  if (!window.EventSource) return;
  var texts = {online: "Online", unavailable: "Unavailable", maintenance: "Maintenance", not_in_service: "Not yet in service", unknown: "Not checked yet"};
  var boxTexts = {operational: "Available", degraded: "Available (some servers down, the service continues)", down: "Unavailable", maintenance: "Under maintenance"};
  var reloading = null;
  var es = new EventSource("/events");
  es.onmessage = function (m) {
    var d;
    try { d = JSON.parse(m.data); } catch (e) { return; }
    var el = d.id && document.getElementById("c-" + d.id);
    if (d.type === "server" && el) {
      el.setAttribute("data-dot", d.status);
      el.querySelector(".dot").className = "dot " + d.status;
      el.querySelector("[data-role=text]").textContent = texts[d.status] || d.status;
      var f = el.querySelector("[data-role=for]");
      if (f) f.textContent = d.for;
    } else if (d.type === "box" && el) {
      el.setAttribute("data-state", d.status);
      var s = el.querySelector("[data-role=service]");
      s.textContent = boxTexts[d.status] || d.status;
      s.className = "service " + (d.status === "down" || d.status === "maintenance" ? "down" : "up");
    } else if (d.type === "incident" || d.type === "maintenance" || d.type === "banner" || d.type === "link") {
      // Timelines are rendered by the server: fetch the page again, once
      // however many changes a storm brings.
      if (!reloading) reloading = setTimeout(function () { window.location.reload(); }, 1500);
      return;
    }
    var u = document.getElementById("updated");
    if (u) { var now = new Date(); u.textContent = now.toUTCString(); u.setAttribute("datetime", now.toISOString()); }
  };
})();
