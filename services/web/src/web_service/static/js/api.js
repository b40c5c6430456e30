// The public API through the gateway, with the bearer token kept in sessionStorage (never in a
// URL or a cookie), and Server-Sent Events read with fetch() + a ReadableStream, since an
// EventSource cannot send the Authorization header.

const TOKEN_KEY = "shop.token";

export function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function claims() {
  const t = token();
  if (!t) return null;
  try {
    const payload = t.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const body = JSON.parse(atob(payload));
    if (body.exp && body.exp * 1000 < Date.now()) {
      signOut();
      return null;
    }
    return body;
  } catch {
    signOut();
    return null;
  }
}

export function signOut() {
  sessionStorage.removeItem(TOKEN_KEY);
}

export class ApiError extends Error {
  constructor(status, detail) {
    super(detail || `HTTP ${status}`);
    this.status = status;
  }
}

async function failure(response) {
  let detail = response.statusText;
  try {
    const body = await response.json();
    detail = body.detail || body.title || detail;
  } catch {
    // not JSON: keep the status text
  }
  return new ApiError(response.status, detail);
}

export async function api(path, { method = "GET", body, headers = {} } = {}) {
  const sent = { Accept: "application/json", ...headers };
  const t = token();
  if (t) sent.Authorization = `Bearer ${t}`;
  if (body !== undefined) sent["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method,
    headers: sent,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "omit",
    cache: "no-store",
  });
  if (response.status === 401) signOut();
  if (!response.ok) throw await failure(response);
  if (response.status === 204) return null;
  return response.json();
}

export async function signIn(email, password) {
  const form = new URLSearchParams({ grant_type: "password", username: email, password });
  const response = await fetch("/auth/token", {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded", Accept: "application/json" },
    body: form,
    credentials: "omit",
  });
  if (!response.ok) throw await failure(response);
  const body = await response.json();
  sessionStorage.setItem(TOKEN_KEY, body.access_token);
  return claims();
}

// Reads a text/event-stream with the bearer token; calls onEvent(name, data) per frame.
// Resolves when the stream ends; rejects with ApiError when it cannot start.
export async function stream(path, onEvent, signal) {
  const headers = { Accept: "text/event-stream" };
  const t = token();
  if (t) headers.Authorization = `Bearer ${t}`;
  const response = await fetch(path, { headers, signal, credentials: "omit", cache: "no-store" });
  if (response.status === 401) signOut();
  if (!response.ok) throw await failure(response);
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value.replace(/\r\n/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let name = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) name = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
      }
      if (data.length) onEvent(name, JSON.parse(data.join("\n")));
    }
  }
}

// Small DOM helpers: elements are built with textContent only (no HTML from data).
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children) if (child != null) node.append(child);
  return node;
}

export function notice(text) {
  const box = document.getElementById("notice");
  box.textContent = text;
  box.hidden = !text;
  if (text) box.dataset.fresh = "1";
}
