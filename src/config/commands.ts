import { parse } from "shell-quote";

/**
 * The first shell operator (`&&`, `|`, `>`, `;`…) in a configured command, or undefined. No
 * shell runs configured commands, so an operator there is a mistake to report before anything
 * is made. Globs are arguments, not operators; variables do not matter to what is an operator.
 */
export function shellOperator(command: string): string | undefined {
  for (const token of parse(command, () => "")) {
    if (typeof token === "object" && "op" in token && !("pattern" in token)) return token.op;
  }
  return undefined;
}
