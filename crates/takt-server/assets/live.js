// takt dashboard: keeps a page current without reloading it. The page names the journal's
// event stream (data-events) and the event kinds worth a refresh (data-kinds); on such an
// event, every element with data-refresh-url is fetched again and swapped in place by htmx.
// The task page's agent log (data-log) gets agent output appended as it arrives, as text.
(function () {
  "use strict";
  var config = document.querySelector("[data-events]");
  if (!config || !window.EventSource) { return; }
  var kinds = (config.getAttribute("data-kinds") || "").split(" ").filter(Boolean);
  var log = config.getAttribute("data-log") ? document.getElementById(config.getAttribute("data-log")) : null;
  var pending = null;

  function swap(element) {
    var url = element.getAttribute("data-refresh-url");
    return fetch(url, { credentials: "same-origin", headers: { "HX-Request": "true" } })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) {
        if (html === null || !element.isConnected) { return; }
        // A form someone is typing into is left alone until its state changes.
        var template = document.createElement("template");
        template.innerHTML = html.trim();
        var fresh = template.content.firstElementChild;
        if (!fresh) { return; }
        var typing = element.contains(document.activeElement) && document.activeElement.tagName !== "BODY";
        var sameState = fresh.getAttribute("data-state") === element.getAttribute("data-state");
        if (element.id === "actions" && (sameState || typing)) { return; }
        element.replaceWith(fresh);
        if (window.htmx) { window.htmx.process(fresh); }
      })
      .catch(function () { /* the next event tries again */ });
  }

  function refresh() {
    pending = null;
    var parts = Array.prototype.slice.call(document.querySelectorAll("[data-refresh-url]"));
    // The actions follow the status: swap them after, so their state comparison sees it.
    parts.sort(function (a, b) { return (a.id === "actions") - (b.id === "actions"); });
    parts.reduce(function (done, element) {
      return done.then(function () { return swap(element); });
    }, Promise.resolve());
  }

  function schedule() {
    if (pending === null) { pending = window.setTimeout(refresh, 250); }
  }

  function appendLog(event) {
    if (!log) { return; }
    var entry;
    try { entry = JSON.parse(event.data); } catch (e) { return; }
    var said = describe(entry);
    if (said === null) { return; }
    var atBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
    log.appendChild(document.createTextNode(said + "\n"));
    if (atBottom) { log.scrollTop = log.scrollHeight; }
  }

  // The same lines the server renders (web/timeline.rs), stripped of control characters.
  function describe(entry) {
    var p = entry.payload || {};
    var e = p.event || {};
    var text;
    switch (e.type) {
      case "message": text = e.text; break;
      case "output": text = e.line; break;
      case "tool_call": text = "[tool] " + e.name + ": " + e.summary; break;
      case "file_change": text = "[file] " + e.path; break;
      case "input_required": text = "[question] " + e.question; break;
      case "approval_required": text = "[approval] " + e.request; break;
      case "error": text = "[error] " + e.message; break;
      case "turn_started": text = "[turn " + e.turn + " started]"; break;
      case "turn_completed": text = "[turn " + e.turn + " completed]"; break;
      case "turn_failed": text = "[turn " + e.turn + " failed] " + e.error; break;
      default: return null;
    }
    var at = new Date(entry.at_ms).toISOString().replace("T", " ").slice(0, 19);
    var clean = String(text).replace(/\u001b\[[0-9;?]*[ -\/]*[@-~]/g, "").replace(/[\u0000-\u0008\u000b-\u001f\u007f]/g, "");
    return at + " " + (p.run_id || "") + " " + clean;
  }

  var source = new EventSource(config.getAttribute("data-events"));
  kinds.forEach(function (kind) {
    source.addEventListener(kind, function (event) {
      if (kind === "agent_event_recorded") { appendLog(event); }
      schedule();
    });
  });
  document.body.setAttribute("data-live", "connecting");
  source.addEventListener("open", function () { document.body.setAttribute("data-live", "on"); });
  source.addEventListener("error", function () { document.body.setAttribute("data-live", "retrying"); });
})();
