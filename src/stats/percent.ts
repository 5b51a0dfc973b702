/** Shares as people read them: the one way every command writes a percentage. */

/** A fraction as a percentage: 0.0123 -> "1.2%" (digits after the point, 1 unless said). */
export function percent(fraction: number, digits = 1): string {
  return `${(fraction * 100).toFixed(digits)}%`;
}

/** n of `of` as a percentage; "0%" when there is nothing to take a share of. */
export function percentOf(n: number, of: number, digits = 1): string {
  return of > 0 ? percent(n / of, digits) : '0%';
}
