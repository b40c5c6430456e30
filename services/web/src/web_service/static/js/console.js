// The system console (admins): a live snapshot over SSE (/web/console/events) drawn as tables,
// the payment provider's fault switches (/api/payments/admin/provider) and the dead-letter
// browser with replay (/web/console/dead-letters/...). The token stays in sessionStorage.
import { api, ApiError, claims, el, notice, signIn, signOut, stream } from "./api.js";

const $ = (id) => document.getElementById(id);
let live = null;

function table(caption, headers, rows) {
  if (!rows.length) return el("p", { class: "hint", text: `${caption}: none yet.` });
  return el("div", { class: "scroll" }, el("table", {},
    el("caption", { text: caption }),
    el("thead", {}, el("tr", {}, ...headers.map((h) => el("th", { scope: "col", text: h })))),
    el("tbody", {}, ...rows.map((cells) => el("tr", {}, ...cells.map((c, i) => (
      i === 0 ? el("th", { scope: "row" }, c) : el("td", {}, c))))))));
}
const pct = (ratio) => (ratio === null || ratio === undefined ? "–" : `${(ratio * 100).toFixed(1)} %`);
const num = (value) => (value === null || value === undefined ? "–" : String(value));
const badge = (text, kind) => el("span", { class: kind, "data-state": text, text });

function drawServices(snap) {
  const box = $("instances");
  box.replaceChildren(...snap.services.map((s) => el("div", { class: "card", "data-service": s.service },
    el("h3", { text: `${s.service}: ${s.up}/${s.instances.length} up` }),
    el("ul", {}, ...s.instances.map((i) => el("li", {},
      badge(i.up ? "up" : "down", i.up ? "ok" : "bad"), ` ${i.address}`))))));
}

function drawBreakers(snap) {
  const kind = (state) => ({ closed: "ok", open: "bad", half_open: "warn" }[state] || "");
  $("breakers").replaceChildren(table("Breakers by service and upstream", ["Breaker", "In", "State", "Failure rate"],
    snap.breakers.map((b) => [b.name, b.service, badge(b.state || "?", kind(b.state)), pct(b.failure_rate)])));
}

function drawTraffic(snap) {
  $("traffic").replaceChildren(
    el("div", { class: "card" }, table("Cache hit ratios", ["Cache", "Level", "Last minute", "Since start", "Lookups (1 min)"],
      snap.caches.map((c) => [`${c.service} ${c.cache}`, c.level, pct(c.hit_ratio_1m), pct(c.hit_ratio), num(c.lookups_1m)]))),
    el("div", { class: "card" }, table("Rate-limit rejections", ["Route", "Last minute", "Since start"],
      snap.rate_limit_rejections.map((r) => [r.route, num(r.last_minute), num(r.total)]))),
    el("div", { class: "card", id: "sagas" }, table("Saga outcomes", ["Outcome", "Last minute", "Since start"],
      snap.sagas.map((s) => [s.outcome, num(s.last_minute), num(s.total)]))));
}

function drawQueues(snap) {
  const rows = snap.queues.map((q) => {
    const handled = Object.entries(q.handled_1m).map(([k, v]) => `${k} ${v}`).join(", ") || "–";
    const cell = q.kind === "dlq"
      ? el("button", { type: "button", text: `Browse ${q.queue}`, onclick: () => browse(q.queue) })
      : badge(q.kind, q.kind === "retry" ? "warn" : "");
    return [q.queue, num(q.depth), handled, cell];
  });
  $("queues").replaceChildren(
    table("Queue depths (ready messages) and deliveries handled in the last minute", ["Queue", "Depth", "Handled (1 min)", ""], rows),
    table("Outbox", ["Service", "Unsent rows", "Lag (s)"], snap.outbox.map((o) => [o.service, num(o.pending), num(o.lag_seconds)])));
}

function drawTrace(snap) {
  const trace = snap.trace;
  if (!trace) return; // keep the "no trace" text
  const rows = trace.spans.map((s) => {
    const bar = el("span", { class: s.error ? "span error" : "span" });
    bar.style.left = `${(s.offset * 100).toFixed(2)}%`; // CSSOM: allowed under the CSP
    bar.style.width = `${Math.max(s.width * 100, 0.3).toFixed(2)}%`;
    const name = el("span", { class: "name", title: `${s.service}: ${s.name}`, text: `${"  ".repeat(s.depth)}${s.service}: ${s.name} (${s.duration_ms} ms)` });
    name.style.paddingLeft = `${s.depth * 0.75}rem`;
    return el("li", {}, name, el("span", { class: "track" }, bar));
  });
  $("trace").replaceChildren(
    el("p", { text: `Trace ${trace.trace_id.slice(0, 16)}…, ${trace.duration_ms} ms, ${trace.spans.length} spans` }),
    el("ul", { class: "waterfall", "aria-label": "Spans of the last order, in tree order" }, ...rows));
}

function draw(snap) {
  drawServices(snap);
  drawBreakers(snap);
  drawTraffic(snap);
  drawQueues(snap);
  drawTrace(snap);
  $("console-updated").textContent = `${new Date(snap.at * 1000).toLocaleTimeString()} (window ${snap.window_seconds} s)`;
  document.body.dataset.snapshots = String(Number(document.body.dataset.snapshots || 0) + 1);
}

// ---------- controls ----------
async function loadProvider() {
  const box = $("provider");
  try {
    const state = await api("/api/payments/admin/provider");
    const down = el("input", { type: "checkbox", id: "provider-down", checked: state.down });
    const rate = el("input", { type: "number", id: "provider-rate", min: "0", max: "1", step: "any", value: String(state.transient_failure_rate) });
    const latency = el("input", { type: "number", id: "provider-latency", min: "0", max: "10000", step: "any", value: String(state.latency_ms) });
    const form = el("form", { id: "provider-form" },
      el("h3", { text: "Payment provider (simulated)" }),
      el("p", {}, "Breaker: ", badge(state.breaker_state, state.breaker_state === "closed" ? "ok" : "bad"),
        ` · charges ${state.charges} · unavailable answers ${state.unavailable_answers}`),
      el("label", { for: "provider-down" }, down, " Provider down (every charge fails)"),
      el("label", { for: "provider-rate", text: "Transient failure rate (0 to 1)" }), rate,
      el("label", { for: "provider-latency", text: "Added latency (ms)" }), latency,
      el("button", { type: "submit", text: "Apply" }),
      el("button", { type: "button", text: "Refresh", onclick: loadProvider }));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      try {
        await api("/api/payments/admin/provider", {
          method: "PUT",
          body: { down: down.checked, transient_failure_rate: Number(rate.value), latency_ms: Number(latency.value) },
        });
        notice(down.checked ? "The payment provider is now failing." : "The payment provider is switched back.");
        await loadProvider();
      } catch (error) {
        notice(`The provider could not be switched: ${error.message}`);
      }
    });
    box.replaceChildren(form);
  } catch (error) {
    box.replaceChildren(el("p", { class: "error", text: `Provider switches unavailable: ${error.message}` }));
  }
}

async function replay(queue, ids) {
  try {
    const answer = await api(`/web/console/dead-letters/${encodeURIComponent(queue)}/replay`, { method: "POST", body: { ids } });
    notice(`Replayed ${answer.replayed.length} message(s) from ${queue}.`);
    await browse(queue);
  } catch (error) {
    notice(`Replay failed: ${error.message}`);
  }
}

async function browse(queue) {
  const box = $("dlq");
  box.replaceChildren(el("h3", { text: `Dead letters of ${queue}` }), el("p", { text: "Loading…" }));
  try {
    const answer = await api(`/web/console/dead-letters/${encodeURIComponent(queue)}`);
    const rows = answer.messages.map((m) => [m.message_id || "–", m.event_type || "–", num(m.attempts), m.error || "–",
      el("button", { type: "button", text: "Replay", "aria-label": `Replay ${m.message_id}`, onclick: () => replay(queue, [m.message_id]) })]);
    box.replaceChildren(el("h3", { text: `Dead letters of ${queue}` }),
      table(`${answer.messages.length} message(s), left in place`, ["Message", "Event", "Attempts", "Last error", ""], rows),
      el("button", { type: "button", text: "Replay all", disabled: rows.length === 0, onclick: () => replay(queue, null) }));
  } catch (error) {
    box.replaceChildren(el("p", { class: "error", text: `Dead letters unavailable: ${error.message}` }));
  }
}

let chaosService = null; // the service chosen in the form (kept across its redraws)

async function loadChaos() {
  const box = $("chaos");
  try {
    const services = await api("/web/console/chaos");
    const names = Object.keys(services);
    const rows = names.flatMap((service) => services[service].flatMap((instance) => (
      instance.rules.length
        ? instance.rules.map((r) => [service, instance.address, r.path_prefix, `${r.latency_ms} ms`, pct(r.error_ratio)])
        : [[service, instance.address, instance.reachable ? "none" : "unreachable", "–", "–"]])));
    const service = el("select", { id: "chaos-service", onchange: (e) => { chaosService = e.target.value; } },
      ...names.map((n) => el("option", { value: n, text: n, selected: n === chaosService })));
    const prefix = el("input", { id: "chaos-prefix", value: "/", maxlength: "200" });
    const latency = el("input", { id: "chaos-latency", type: "number", min: "0", max: "10000", step: "any", value: "0" });
    const ratio = el("input", { id: "chaos-ratio", type: "number", min: "0", max: "1", step: "any", value: "0" });
    const form = el("form", { id: "chaos-form" },
      el("h3", { text: "Chaos switches (off in production)" }),
      table("Rules in force", ["Service", "Instance", "Path prefix", "Latency", "Errors"], rows),
      el("label", { for: "chaos-service", text: "Service" }), service,
      el("label", { for: "chaos-prefix", text: "Path prefix" }), prefix,
      el("label", { for: "chaos-latency", text: "Added latency (ms)" }), latency,
      el("label", { for: "chaos-ratio", text: "Error ratio (0 to 1)" }), ratio,
      el("button", { type: "submit", text: "Set rule" }),
      el("button", { type: "button", text: "Clear service", onclick: () => setChaos("DELETE", service.value) }));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      setChaos("PUT", service.value, { path_prefix: prefix.value, latency_ms: Number(latency.value), error_ratio: Number(ratio.value) });
    });
    box.replaceChildren(form);
  } catch (error) {
    box.replaceChildren(el("p", { class: "error", text: `Chaos switches unavailable: ${error.message}` }));
  }
}

async function setChaos(method, service, body) {
  try {
    await api(`/web/console/chaos/${encodeURIComponent(service)}`, { method, body });
    notice(method === "DELETE" ? `Chaos cleared on ${service}.` : `Chaos rule set on ${service}.`);
  } catch (error) {
    notice(`The chaos switch refused: ${error.message}`);
  }
  await loadChaos();
}

// ---------- the live stream ----------
async function connect() {
  if (live) live.abort();
  const controller = new AbortController();
  live = controller;
  while (live === controller) {
    try {
      await stream("/web/console/events", (name, data) => { if (name === "snapshot") draw(data); }, controller.signal);
    } catch (error) {
      if (error.name === "AbortError") return;
      if (error instanceof ApiError && (error.status === 401 || error.status === 403)) {
        showLogin(error.status === 403 ? "This console is for admins only." : "Please sign in again.");
        return;
      }
      $("console-updated").textContent = `reconnecting (${error.message})`;
    }
    await new Promise((resolve) => setTimeout(resolve, 2000));
  }
}

function showLogin(message) {
  if (live) live.abort();
  live = null;
  $("console-login").hidden = false;
  $("console-body").hidden = true;
  $("console-error").textContent = message || "";
}

function start() {
  $("console-login").hidden = true;
  $("console-body").hidden = false;
  $("who").textContent = `Admin (user ${claims().sub})`;
  connect();
  loadProvider();
  loadChaos();
  $("dlq").replaceChildren(el("h3", { text: "Dead letters" }), el("p", { class: "hint", text: "Choose a .dlq queue above to browse it." }));
}

$("console-signin").addEventListener("submit", async (event) => {
  event.preventDefault();
  try {
    const who = await signIn($("console-email").value.trim(), $("console-password").value);
    $("console-password").value = "";
    if (!(who.roles || []).includes("admin")) {
      signOut();
      $("console-error").textContent = "This console is for admins only.";
      return;
    }
    start();
  } catch (error) {
    $("console-error").textContent = error instanceof ApiError && error.status === 401 ? "Wrong email or password." : error.message;
  }
});

const who = claims();
if (who && (who.roles || []).includes("admin")) start();
else showLogin(who ? "This console is for admins only." : "");
