// The storefront: catalog (search, pages), cart, checkout, the order followed live over SSE,
// order history and cancellation, sign-up and sign-in. Views are sections switched by the URL
// fragment (#catalog, #cart, #orders, #order/<id>, #account); data comes from the public API.
import { api, ApiError, claims, el, notice, signIn, signOut, stream } from "./api.js";

const CART_KEY = "shop.cart";
const $ = (id) => document.getElementById(id);
let nextPage = null;
let following = null; // AbortController of the open order stream
let placed = null; // the order as POST /api/orders answered (its first state: PENDING)

// ---------- cart (sessionStorage: sku → {sku, name, price, currency, quantity}) ----------
function cart() {
  try {
    return JSON.parse(sessionStorage.getItem(CART_KEY) || "{}");
  } catch {
    return {};
  }
}
function saveCart(lines) {
  sessionStorage.setItem(CART_KEY, JSON.stringify(lines));
  renderCartCount();
}
function renderCartCount() {
  const count = Object.values(cart()).reduce((n, line) => n + line.quantity, 0);
  $("cart-count").textContent = String(count);
}
function addToCart(product) {
  const lines = cart();
  const line = lines[product.sku] || { ...product, quantity: 0 };
  line.quantity = Math.min(line.quantity + 1, 99);
  lines[product.sku] = line;
  saveCart(lines);
  notice(`${product.name} added to your cart.`);
}

function renderCart() {
  const lines = Object.values(cart());
  $("cart-empty").hidden = lines.length > 0;
  $("cart-table").hidden = lines.length === 0;
  $("place-order").hidden = lines.length === 0;
  const body = $("cart-lines");
  body.replaceChildren();
  let total = 0;
  for (const line of lines) {
    total += Number(line.price) * line.quantity;
    const qty = el("input", {
      type: "number", min: "1", max: "99", value: String(line.quantity),
      id: `qty-${line.sku}`, "aria-label": `Quantity of ${line.name}`,
      onchange: (event) => {
        const all = cart();
        const value = Math.max(1, Math.min(99, Number.parseInt(event.target.value, 10) || 1));
        all[line.sku].quantity = value;
        saveCart(all);
        renderCart();
      },
    });
    const remove = el("button", {
      type: "button", text: "Remove", "aria-label": `Remove ${line.name}`,
      onclick: () => {
        const all = cart();
        delete all[line.sku];
        saveCart(all);
        renderCart();
      },
    });
    body.append(el("tr", {},
      el("th", { scope: "row", text: line.name }),
      el("td", { text: `${line.price} ${line.currency}` }),
      el("td", {}, qty),
      el("td", {}, remove)));
  }
  const currency = lines.length ? lines[0].currency : "";
  $("cart-total").textContent = `${total.toFixed(2)} ${currency}`;
}

async function placeOrder() {
  $("cart-error").textContent = "";
  if (!claims()) {
    notice("Sign in to place your order.");
    location.hash = "#account";
    return;
  }
  const lines = Object.values(cart());
  const currencies = new Set(lines.map((l) => l.currency));
  if (currencies.size !== 1) {
    $("cart-error").textContent = "One order takes one currency; split your cart.";
    return;
  }
  const button = $("place-order");
  button.disabled = true;
  try {
    const order = await api("/api/orders", {
      method: "POST",
      headers: { "Idempotency-Key": crypto.randomUUID() },
      body: { items: lines.map((l) => ({ sku: l.sku, quantity: l.quantity })), currency: [...currencies][0] },
    });
    saveCart({});
    placed = order;
    location.hash = `#order/${order.id}`;
  } catch (error) {
    $("cart-error").textContent = error.message;
  } finally {
    button.disabled = false;
  }
}

// ---------- catalog ----------
async function loadProducts(reset) {
  const list = $("products");
  const params = new URLSearchParams();
  const q = $("search-q").value.trim();
  const category = $("search-category").value;
  if (q) params.set("q", q);
  if (category) params.set("category", category);
  params.set("page_size", "12");
  if (!reset && nextPage) params.set("page_token", nextPage);
  list.setAttribute("aria-busy", "true");
  try {
    const page = await api(`/api/products?${params}`);
    if (reset) list.replaceChildren();
    for (const p of page.items) {
      list.append(el("li", { class: "product" },
        el("img", { src: p.image_url, alt: "", width: "160", height: "120", loading: "lazy" }),
        el("h2", { text: p.name }),
        el("p", { class: "desc", text: p.description }),
        el("p", { class: "price", text: `${p.price} ${p.currency}` }),
        el("button", {
          type: "button", text: "Add to cart", "aria-label": `Add ${p.name} to cart`,
          onclick: () => addToCart({ sku: p.sku, name: p.name, price: p.price, currency: p.currency }),
        })));
    }
    if (reset && page.items.length === 0) list.append(el("li", { text: "No product matches." }));
    nextPage = page.next_page_token;
    $("more").hidden = !nextPage;
  } catch (error) {
    notice(`The catalog cannot be shown now: ${error.message}`);
  } finally {
    list.setAttribute("aria-busy", "false");
  }
}

// ---------- one order, live ----------
function stepLabel(status) {
  return {
    PENDING: "Placed: reserving stock and taking payment",
    RESERVED: "Stock reserved",
    PAID: "Paid",
    PAYMENT_FAILED: "Payment failed",
    REJECTED: "Rejected: out of stock",
    CANCELLED: "Cancelled",
    CANCELLED_REFUND_PENDING: "Cancelled: refund under way",
    REFUNDED: "Refunded",
  }[status] || status;
}

function showState(state) {
  $("order-status").textContent = state.status;
  $("order-status").dataset.status = state.status;
  $("order-reason").textContent = state.failure_reason || "";
  const steps = $("order-steps");
  const last = steps.lastElementChild;
  if (!last || last.dataset.status !== state.status) {
    const time = state.updated_at ? new Date(state.updated_at).toLocaleTimeString() : "";
    steps.append(el("li", { "data-status": state.status, text: `${stepLabel(state.status)} ${time}`.trim() }));
  }
  $("order-cancel").hidden = !["PENDING", "PAID"].includes(state.status);
}

async function follow(orderId) {
  if (following) following.abort();
  const controller = new AbortController();
  following = controller;
  try {
    await stream(`/web/orders/${orderId}/events`, (name, data) => {
      if (name === "order") showState(data);
      else if (name === "error") notice(data.detail);
    }, controller.signal);
  } catch (error) {
    if (error.name !== "AbortError") notice(`Live status unavailable: ${error.message}`);
  }
}

async function showOrder(orderId) {
  $("order-id").textContent = orderId.slice(0, 8);
  $("order-steps").replaceChildren();
  $("order-cancel").hidden = true;
  $("order-cancel").dataset.order = orderId;
  if (placed && placed.id === orderId) showState(placed); // the stream may start past PENDING
  placed = null;
  await follow(orderId);
}

async function cancelOrder() {
  const orderId = $("order-cancel").dataset.order;
  $("order-cancel").disabled = true;
  try {
    const order = await api(`/api/orders/${orderId}/cancel`, { method: "POST" });
    showState(order);
    await follow(orderId);
  } catch (error) {
    notice(`The order cannot be cancelled: ${error.message}`);
  } finally {
    $("order-cancel").disabled = false;
  }
}

// ---------- history ----------
async function loadOrders() {
  try {
    const page = await api("/api/orders?page_size=50");
    const body = $("orders-lines");
    body.replaceChildren();
    $("orders-empty").hidden = page.items.length > 0;
    $("orders-table").hidden = page.items.length === 0;
    for (const order of page.items) {
      body.append(el("tr", { "data-order": order.id },
        el("td", { text: new Date(order.created_at).toLocaleString() }),
        el("td", { class: "status", "data-status": order.status, text: order.status }),
        el("td", { text: `${order.total} ${order.currency}` }),
        el("td", {}, el("a", { href: `#order/${order.id}`, text: `View ${order.id.slice(0, 8)}` }))));
    }
  } catch (error) {
    notice(`Your orders cannot be shown now: ${error.message}`);
  }
}

// ---------- account ----------
function renderAccount() {
  const who = claims();
  $("signed-out").hidden = Boolean(who);
  $("signed-in").hidden = !who;
  $("account-link").textContent = who ? "Account" : "Sign in";
  $("who").textContent = who ? `Signed in (user ${who.sub})` : "";
  if (who) $("signed-in-as").textContent = `user ${who.sub}`;
}

async function onSignIn(event) {
  event.preventDefault();
  $("signin-error").textContent = "";
  try {
    await signIn($("signin-email").value.trim(), $("signin-password").value);
    $("signin-password").value = "";
    renderAccount();
    notice("Welcome back.");
    location.hash = Object.keys(cart()).length ? "#cart" : "#catalog";
  } catch (error) {
    $("signin-error").textContent = error instanceof ApiError && error.status === 401
      ? "Wrong email or password." : error.message;
  }
}

async function onSignUp(event) {
  event.preventDefault();
  $("signup-error").textContent = "";
  const email = $("signup-email").value.trim();
  const password = $("signup-password").value;
  try {
    await api("/web/signup", { method: "POST", body: { name: $("signup-name").value, email, password } });
    await signIn(email, password);
    $("signup-password").value = "";
    renderAccount();
    notice("Your account is ready; you are signed in.");
    location.hash = Object.keys(cart()).length ? "#cart" : "#catalog";
  } catch (error) {
    $("signup-error").textContent = error.message;
  }
}

// ---------- views ----------
function route(event) {
  const hash = location.hash.slice(1) || "catalog";
  const [view, arg] = hash.split("/");
  const known = ["catalog", "cart", "orders", "order", "account"];
  let name = known.includes(view) ? view : "catalog";
  if ((name === "orders" || name === "order") && !claims()) {
    notice("Sign in to see your orders.");
    name = "account";
  }
  if (name !== "order" && following) {
    following.abort();
    following = null;
  }
  for (const section of document.querySelectorAll(".view")) section.hidden = section.id !== `view-${name}`;
  for (const link of document.querySelectorAll("nav a[data-view]")) {
    if (link.dataset.view === name) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  if (name === "cart") renderCart();
  if (name === "orders") loadOrders();
  if (name === "account") renderAccount();
  if (name === "order" && /^[0-9a-f-]{36}$/.test(arg || "")) showOrder(arg);
  if (event) {
    $("main").focus({ preventScroll: true }); // a view changed: move focus to it
    const box = $("notice"); // a notice outlives the one view change that follows it
    if (box.dataset.fresh) delete box.dataset.fresh;
    else notice("");
  }
}

$("search-form").addEventListener("submit", (event) => {
  event.preventDefault();
  nextPage = null;
  loadProducts(true);
});
$("more").addEventListener("click", () => loadProducts(false));
$("place-order").addEventListener("click", placeOrder);
$("order-cancel").addEventListener("click", cancelOrder);
$("signin-form").addEventListener("submit", onSignIn);
$("signup-form").addEventListener("submit", onSignUp);
$("signout").addEventListener("click", () => {
  signOut();
  renderAccount();
  notice("Signed out.");
  location.hash = "#catalog";
});
window.addEventListener("hashchange", route);
renderCartCount();
renderAccount();
loadProducts(true);
route();
