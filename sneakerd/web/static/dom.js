/* The few DOM helpers both pages share: finding and making elements, message boxes, the
 * network bar, and product images that can only come from this origin or over https.
 */

export const PLACEHOLDER = "/static/sneaker.svg";

export const $ = (id) => document.getElementById(id);

/** A new `<tag class="className">text</tag>`. */
export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/** Show `text` in a message box styled by `kind` (info, success, error); no text hides it. */
export function showMessage(node, kind, text) {
  if (!node) return;
  if (!text) {
    node.hidden = true;
    node.textContent = "";
    return;
  }
  node.dataset.kind = kind;
  node.textContent = text;
  node.hidden = false;
}

/** The bar under the header that says the live updates are paused; no text hides it. */
export function setNetbar(kind, text) {
  const bar = $("netbar");
  if (!bar) return;
  if (!text) {
    bar.hidden = true;
    return;
  }
  bar.dataset.kind = kind;
  bar.textContent = text;
  bar.hidden = false;
}

/** Only https images or this origin's own files: anything else gets the placeholder. */
function imageFor(url) {
  if (typeof url !== "string" || !url) return PLACEHOLDER;
  try {
    const parsed = new URL(url, location.origin);
    if (parsed.origin === location.origin || parsed.protocol === "https:") return parsed.href;
  } catch (e) {
    /* fall through */
  }
  return PLACEHOLDER;
}

/** Point `img` at a drop's image, without reloading it when the drop is re-rendered. */
export function setImage(img, url) {
  const wanted = imageFor(url);
  if (img.dataset.src === wanted) return;
  img.dataset.src = wanted;
  img.src = wanted;
}

/** A product image that fails to load (a dead CDN link) shows the placeholder instead. */
export function usePlaceholderForBrokenImages() {
  document.addEventListener(
    "error",
    (event) => {
      const img = event.target;
      if (img instanceof HTMLImageElement && !img.src.endsWith(PLACEHOLDER)) img.src = PLACEHOLDER;
    },
    true,
  );
}
