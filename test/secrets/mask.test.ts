import { describe, expect, test } from "vitest";
import { MASK, maskingStream, maskSecrets, rememberSecret } from "../../src/secrets/mask.js";

// What this process revealed is process-wide: each test reveals secrets of its own.

/** What a masking stream prints when `chunks` are written to it one by one, then it ends. */
function streamed(chunks: string[]): { printed: string[]; whole: string } {
  const printed: string[] = [];
  const stream = maskingStream((text) => printed.push(text));
  for (const chunk of chunks) stream.write(chunk);
  stream.end();
  return { printed, whole: printed.join("") };
}

describe("masking every spelling of a secret", () => {
  test("as is, and JSON-escaped as --json prints it", () => {
    const secret = 'p"q\\zW0rd-4711';
    rememberSecret(secret);
    expect(maskSecrets(`the password is ${secret}.`)).toBe(`the password is ${MASK}.`);
    expect(maskSecrets(JSON.stringify({ error: { message: `the token is ${secret}\n` } }))).toBe(
      `{"error":{"message":"the token is ${MASK}\\n"}}`,
    );
    // Other JSON writers escape more: \/ and \u sequences.
    rememberSecret("ünï/cøde-tab\t");
    expect(maskSecrets('{"v":"\\u00fcn\\u00EF\\/c\\u00f8de-tab\\t"}')).toBe(`{"v":"${MASK}"}`);
  });

  test("percent-encoded as URLs, forms and their writers carry it", () => {
    const secret = "pa@ss:w/rd +&!ü";
    rememberSecret(secret);
    expect(maskSecrets(`postgresql://app:${encodeURIComponent(secret)}@db:5432/app`)).toBe(
      `postgresql://app:${MASK}@db:5432/app`,
    );
    const url = new URL("postgresql://db:5432/app");
    url.username = "app";
    url.password = secret;
    expect(maskSecrets(url.href)).toBe(`postgresql://app:${MASK}@db:5432/app`);
    expect(maskSecrets(`?${new URLSearchParams({ user: "app", password: secret })}`)).toBe(
      `?user=app&password=${MASK}`,
    );
    expect(maskSecrets(encodeURIComponent(secret).toLowerCase())).toBe(MASK);
  });

  test("overlapping secrets are masked as one, no piece of either shows", () => {
    rememberSecret("abcd-1234");
    rememberSecret("1234-wxyz");
    rememberSecret("aaaa");
    expect(maskSecrets("x abcd-1234-wxyz y")).toBe(`x ${MASK} y`);
    expect(maskSecrets("1234-wxyzabcd-1234")).toBe(MASK);
    expect(maskSecrets("aaaaaa!")).toBe(`${MASK}!`);
  });

  test("a value shorter than 4 characters is not masked: it would mangle everything else", () => {
    rememberSecret("q7z");
    expect(maskSecrets("q7z is short")).toBe("q7z is short");
    rememberSecret("q7zv");
    expect(maskSecrets("q7zv is not")).toBe(`${MASK} is not`);
  });
});

describe("a masking stream", () => {
  const secret = 'tok-"s3cret"-4711';
  rememberSecret(secret);
  const json = JSON.stringify(secret).slice(1, -1);

  test("masks a secret written in two writes, at every split", () => {
    const escaped = (prefix: string, code: number, width: number) =>
      `${prefix}${code.toString(16).padStart(width, "0")}`;
    for (const spelling of [
      secret,
      json,
      encodeURIComponent(secret),
      [...Buffer.from(secret)].map((byte) => escaped("%", byte, 2)).join(""),
      secret
        .split("")
        .map((unit) => escaped("\\u", unit.charCodeAt(0), 4))
        .join(""),
    ]) {
      const text = `token=${spelling}\nnext line\n`;
      for (let at = 0; at <= text.length; at++) {
        expect(streamed([text.slice(0, at), text.slice(at)]).whole).toBe(`token=${MASK}\nnext line\n`);
      }
    }
  });

  test("masks a secret written in three writes, and in one write per character", () => {
    const text = `a ${secret} b ${json} c`;
    for (let first = 1; first < text.length; first += 3)
      for (let second = first; second <= text.length; second += 2)
        expect(streamed([text.slice(0, first), text.slice(first, second), text.slice(second)]).whole).toBe(
          `a ${MASK} b ${MASK} c`,
        );
    expect(streamed([...text]).whole).toBe(`a ${MASK} b ${MASK} c`);
  });

  test("masks overlapping secrets split across writes as one", () => {
    const text = "x abcd-1234-wxyz y";
    for (let at = 0; at <= text.length; at++)
      expect(streamed([text.slice(0, at), text.slice(at)]).whole).toBe(`x ${MASK} y`);
  });

  test("prints at once what cannot begin a secret, holds back only what might", () => {
    const printed: string[] = [];
    const stream = maskingStream((text) => printed.push(text));
    stream.write("started\n");
    expect(printed).toEqual(["started\n"]);
    stream.write("the token is tok-");
    expect(printed.join("")).toBe("started\nthe token is ");
    stream.write("not it\n");
    expect(printed.join("")).toBe("started\nthe token is tok-not it\n");
    stream.write(`then ${secret.slice(0, 9)}`);
    expect(printed.join("")).toMatch(/then $/);
    stream.write(secret.slice(9));
    stream.write("\n");
    expect(printed.join("")).toBe(`started\nthe token is tok-not it\nthen ${MASK}\n`);
  });

  test("ending prints what it held back: a secret's beginning at the very end is not lost", () => {
    expect(streamed(["last words: tok-", '"s3c']).whole).toBe('last words: tok-"s3c');
    expect(streamed([`${secret}`]).whole).toBe(MASK);
    expect(streamed([`tail ${secret.slice(0, -1)}`, secret.slice(-1)]).whole).toBe(`tail ${MASK}`);
  });
});

test("whatever mix of spellings and however cut, a stream prints what masking the whole text does", () => {
  const secrets = ["%25%x-1", "\\\\ab\\\\", "p w+/é😀z"];
  for (const secret of secrets) rememberSecret(secret);
  let seed = 42;
  const random = (n: number) => {
    seed = (seed * 1_103_515_245 + 12_345) & 0x7fffffff;
    return seed % n;
  };
  // Each character as is, JSON-escaped, percent-encoded or \u-escaped, + for a space.
  const spell = (secret: string) =>
    [...secret]
      .map(
        (c) =>
          [
            c,
            JSON.stringify(c).slice(1, -1),
            [...Buffer.from(c)].map((b) => `%${b.toString(16).padStart(2, "0")}`).join(""),
            c
              .split("")
              .map((u) => `\\u${u.charCodeAt(0).toString(16).toUpperCase().padStart(4, "0")}`)
              .join(""),
            c === " " ? "+" : c,
          ][random(5)],
      )
      .join("");
  const noise = ["x", " ", "\n", "%", "%2", "\\", "\\u", "+", "p w", "😀"];
  for (let round = 0; round < 300; round++) {
    let text = "";
    for (let piece = 0; piece < 8; piece++)
      text += random(3) === 0 ? spell(secrets[random(secrets.length)] ?? "") : noise[random(noise.length)];
    const whole = maskSecrets(text);
    for (const secret of secrets) expect(whole).not.toContain(secret);
    const chunks: string[] = [];
    for (let at = 0; at < text.length; ) {
      const next = at + 1 + random(6);
      chunks.push(text.slice(at, next));
      at = next;
    }
    expect(streamed(chunks).whole).toBe(whole);
  }
});
