/** Renders a widget into a container. */
export default class Widget {
  /** Shows the widget. */
  show() {
    this.visible = true
  }
}

/** Debounces a function by wait milliseconds. */
export const debounce = (fn, wait) => {
  let timer
  return (...args) => { clearTimeout(timer); timer = setTimeout(() => fn(...args), wait) }
}
