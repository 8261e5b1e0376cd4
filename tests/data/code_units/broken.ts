/** Adds two numbers. */
export function add(a: number, b: number): number {
  return a + b
}

export function broken(a: number {
  return a +
}

/** Subtracts b from a. */
export function subtract(a: number, b: number): number {
  return a - b
}
