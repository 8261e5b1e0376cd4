import React from 'react'

/** Props of {@link Button}. */
export interface ButtonProps {
  label: string
  onClick: () => void
}

/** A clickable button with a label. */
export function Button({ label, onClick }: ButtonProps) {
  return <button onClick={onClick}>{label}</button>
}
