// Every plaintext this process revealed, so that whatever it prints can be masked: a secret may
// come back in a failing command's output, an error message or a log line.
const revealed = new Set<string>();

/** Secrets shorter than this are not masked: masking "1" everywhere would mangle all output. */
const SHORTEST_MASKED = 4;

export const MASK = "***";

export function rememberSecret(plaintext: string): void {
  if (plaintext.length >= SHORTEST_MASKED) revealed.add(plaintext);
}

/** `text` with every secret this process revealed replaced by ***. */
export function maskSecrets(text: string): string {
  let masked = text;
  // Longest first, so a secret containing another is masked whole.
  for (const secret of [...revealed].sort((a, b) => b.length - a.length))
    masked = masked.replaceAll(secret, MASK);
  return masked;
}
