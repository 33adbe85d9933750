/**
 * Which `code_repo_url` values the laboratory gives git. Git runs programs for some of them —
 * remote helpers (`ext::sh -c …`), unknown schemes (`git-remote-<scheme>`), and anything it reads
 * as an option (`--upload-pack=…`) — so only transports that just fetch are allowed.
 */

/** The URL schemes git may clone from; others run a `git-remote-<scheme>` helper. */
export const REPOSITORY_SCHEMES = ["https", "http", "ssh", "git", "file"] as const;

/** What a repository may be, for fixes. */
export const REPOSITORY_FORMS =
  "an https://, http://, ssh://, git:// or file:// URL, user@host:path, or a local path";

// Git's own grammar (transport.c, url.c): a scheme is a letter then letters, digits, + - .
const HELPER = /^([A-Za-z][A-Za-z0-9+.-]*)::/;
const URL_SCHEME = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//;
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it finds
const CONTROL = /[\u0000-\u001f\u007f]/;

/** Why `url` must not reach git as the repository to clone (to follow its quoted text), or undefined. */
export function repositoryProblem(url: string): string | undefined {
  if (CONTROL.test(url)) return "contains a control character";
  if (url.startsWith("-")) return 'starts with "-": git would read it as an option';
  const helper = HELPER.exec(url)?.[1];
  if (helper) return `uses the remote helper "${helper}::", which runs programs on the laboratory`;
  const scheme = URL_SCHEME.exec(url)?.[1];
  if (scheme === undefined) return undefined;
  if (!(REPOSITORY_SCHEMES as readonly string[]).includes(scheme))
    return `uses the scheme ${scheme}://, which is not allowed`;
  // Git hands what follows ssh:// to ssh as one argument.
  if (url.slice(scheme.length + 3).startsWith("-"))
    return `has "-" right after ${scheme}://: ssh would read it as an option`;
  return undefined;
}
