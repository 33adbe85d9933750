/** `text` with `$NAME` and `${NAME}` replaced from `variables`; other `$` text is kept. */
export function expandVariables(text: string, variables: Record<string, string>): string {
  return text.replace(
    /\$(?:\{(\w+)\}|([A-Za-z_]\w*))/g,
    (whole, braced: string | undefined, bare: string | undefined) => variables[braced ?? bare ?? ""] ?? whole,
  );
}
