// Every plaintext this process revealed, so that whatever it prints can be masked: a secret may
// come back in a failing command's output, an error message or a log line — as is, or spelled
// as JSON or a URL writes it, and cut anywhere between the writes of a stream.

/** Secrets shorter than this are not masked: masking "1" everywhere would mangle all output. */
const SHORTEST_MASKED = 4;

export const MASK = "***";

/** A revealed secret: for each of its characters, every spelling output may give it. */
interface Secret {
  spellings: string[][];
  /** Finds where a spelling of its first characters begins. */
  beginning: RegExp;
  /** The length of the longest spelling of those first characters. */
  beginningLength: number;
  /**
   * Partial spellings by where they have reached, in a ring as wide as its widest spelling of a
   * character: for each count of characters spelled, the earliest start it was done from (a later
   * one ends where it does, so masks no more). Spellings of one character may differ in length and
   * begin alike (% and %25): many may be alive at once. Empty (infinite) between uses.
   */
  ring: Float64Array[];
}

/** How many characters of a secret a regular expression looks for: few cannot make it backtrack long. */
const BEGINNING = 3;

const revealed = new Map<string, Secret>();

/** Remembers a revealed plaintext, so that this process masks it in all it prints. */
export function rememberSecret(plaintext: string): void {
  if (plaintext.length < SHORTEST_MASKED || revealed.has(plaintext)) return;
  const spellings = [...plaintext].map(spellingsOf);
  const longest = (each: string[]) => Math.max(...each.map((s) => s.length));
  const beginning = spellings.slice(0, BEGINNING);
  const widest = Math.max(...spellings.map(longest));
  revealed.set(plaintext, {
    spellings,
    beginning: new RegExp(beginning.map((each) => `(?:${each.map(literally).join("|")})`).join(""), "g"),
    beginningLength: beginning.reduce((sum, each) => sum + longest(each), 0),
    ring: Array.from({ length: widest + 1 }, () =>
      new Float64Array(spellings.length + 1).fill(Number.POSITIVE_INFINITY),
    ),
  });
}

/** A regular expression that matches `text` and nothing else. */
function literally(text: string): string {
  return text
    .split("")
    .map((unit) => `\\u${unit.charCodeAt(0).toString(16).padStart(4, "0")}`)
    .join("");
}

/**
 * Every way output may spell one character: as is; JSON-escaped (JSON.stringify's escapes, and
 * the \uXXXX and \/ other writers use); percent-encoded in either case, as URLs and forms carry
 * it (+ for a space). A secret is masked whichever of these each of its characters takes.
 */
function spellingsOf(char: string): string[] {
  const units = Array.from({ length: char.length }, (_, i) => char.charCodeAt(i));
  const bytes = [...Buffer.from(char, "utf8")];
  const spellings = [char, JSON.stringify(char).slice(1, -1)];
  for (const hex of [(n: number) => n.toString(16), (n: number) => n.toString(16).toUpperCase()])
    spellings.push(
      units.map((unit) => `\\u${hex(unit).padStart(4, "0")}`).join(""),
      bytes.map((byte) => `%${hex(byte).padStart(2, "0")}`).join(""),
    );
  if (char === " ") spellings.push("+");
  if (char === "/") spellings.push("\\/");
  return [...new Set(spellings)];
}

/**
 * Calls `found` with each stretch of `text` that spells `secret` (the longest of those ending at
 * one place); returns where the first spelling that `text` cuts off at its end begins
 * (`text.length` when none does).
 */
function spell(text: string, secret: Secret, found: (start: number, end: number) => void): number {
  const length = secret.spellings.length;
  const ring = secret.ring;
  let alive = 0;
  let cut = text.length;
  // From here on a spelling the end cuts off may not have spelled the secret's beginning whole:
  // every position is a candidate, not only those the regular expression finds.
  const tail = Math.max(0, text.length - secret.beginningLength + 1);
  for (let at = 0; at <= text.length; at++) {
    if (alive === 0 && at < tail) {
      secret.beginning.lastIndex = at;
      at = Math.min(secret.beginning.exec(text)?.index ?? tail, tail);
    }
    const here = ring[at % ring.length] as Float64Array;
    if (at < text.length) here[0] = at;
    for (let spelled = 0; spelled <= length; spelled++) {
      const start = here[spelled] ?? Number.POSITIVE_INFINITY;
      if (start === Number.POSITIVE_INFINITY) continue;
      here[spelled] = Number.POSITIVE_INFINITY;
      if (spelled > 0) alive--;
      if (spelled === length) found(start, at);
      else if (at === text.length) cut = Math.min(cut, start);
      else
        for (const spelling of secret.spellings[spelled] ?? []) {
          if (text.startsWith(spelling, at)) {
            const there = ring[(at + spelling.length) % ring.length] as Float64Array;
            if (there[spelled + 1] === Number.POSITIVE_INFINITY) alive++;
            there[spelled + 1] = Math.min(there[spelled + 1] ?? start, start);
          } else if (text.length - at < spelling.length && spelling.startsWith(text.slice(at)))
            cut = Math.min(cut, start);
        }
    }
  }
  return cut;
}

/**
 * The stretches of `text` that spell a revealed secret, and where the first spelling that
 * `text` cuts off at its end begins (`text.length` when none does).
 */
function secretSpans(text: string): { spans: Array<[number, number]>; cut: number } {
  const spans: Array<[number, number]> = [];
  let cut = text.length;
  for (const secret of revealed.values())
    cut = Math.min(
      cut,
      spell(text, secret, (start, end) => spans.push([start, end])),
    );
  return { spans, cut };
}

/** Text not printed yet, and how the printed text ended. */
interface Held {
  text: string;
  /** How many of its first characters belong to a secret whose MASK is printed already. */
  maskedHead: number;
  /** Whether what was printed ends with a MASK, which a secret starting `text` continues. */
  afterMask: boolean;
}

/**
 * `held.text` masked up to where a secret it cuts off begins (all of it when `end`): what to
 * print, and what to hold back. Each run of secrets — overlapping or side by side — is one MASK.
 */
function maskUpTo(held: Held, end: boolean): { printed: string; held: Held } {
  const { text } = held;
  const { spans, cut } = secretSpans(text);
  const upTo = end ? text.length : cut;
  const masked = new Uint8Array(text.length);
  masked.fill(1, 0, held.maskedHead);
  for (const [start, stop] of spans) masked.fill(1, start, stop);
  let printed = "";
  for (let at = 0; at < upTo; ) {
    const next = masked.indexOf(masked[at] ? 0 : 1, at);
    const stop = next === -1 || next > upTo ? upTo : next;
    if (!masked[at]) printed += text.slice(at, stop);
    else if (at > 0 || !held.afterMask) printed += MASK;
    at = stop;
  }
  const unmasked = masked.indexOf(0, upTo);
  return {
    printed,
    held: {
      text: text.slice(upTo),
      maskedHead: (unmasked === -1 ? text.length : unmasked) - upTo,
      afterMask: upTo > 0 ? masked[upTo - 1] === 1 : held.afterMask,
    },
  };
}

/** `text` with every secret this process revealed replaced by ***, however it is spelled. */
export function maskSecrets(text: string): string {
  return maskUpTo({ text, maskedHead: 0, afterMask: false }, true).printed;
}

/** Text written in pieces: a child's output, a log followed as it grows. */
export interface MaskingStream {
  write(text: string): void;
  /** Writes what was held back. */
  end(): void;
}

/**
 * Writes through `write` with every revealed secret masked, also one cut across writes: of each
 * write it holds back only what may begin a secret, until the next write or `end`.
 */
export function maskingStream(write: (text: string) => void): MaskingStream {
  let held: Held = { text: "", maskedHead: 0, afterMask: false };
  const pass = (text: string, end: boolean) => {
    const masked = maskUpTo({ ...held, text: held.text + text }, end);
    held = masked.held;
    if (masked.printed) write(masked.printed);
  };
  return { write: (text) => pass(text, false), end: () => pass("", true) };
}
