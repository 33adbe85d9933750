import type { Command } from "commander";
import { laboratoryOrigin, parseLaboratoryAddress } from "../config/host.js";
import { LabtestError, UsageError } from "../errors.js";
import type { Credential } from "../laboratory/credentials.js";
import { EXIT_REFUSED } from "../laboratory/identity.js";
import { type PresentedCertificate, presentedCertificate, sameFingerprint } from "../laboratory/pinning.js";
import { PROTOCOL_VERSION as v } from "../laboratory/protocol-constants.js";
import type { CliIo } from "./io.js";

/** `labtest login URL --token -` and `labtest logout [URL]`: a laptop's credential for a laboratory. */
export function registerLoginCommands(program: Command, io: CliIo): void {
  program
    .command("login <url>")
    .description(
      "log in to the laboratory at https://host[:port]: pins its certificate authority and stores the token (read from standard input)",
    )
    .addHelpText(
      "after",
      "\nIn CI, without login: LABTEST_HOST=https://… LABTEST_TOKEN=lt_… LABTEST_FINGERPRINT=SHA256:… (LABTEST_TOKEN also replaces a stored token).",
    )
    .requiredOption("--token <->", "- : read the token from standard input (never on the command line)")
    .option(
      "--fingerprint <SHA256:…>",
      "the laboratory's certificate fingerprint, as labtest lab init printed it (else asked at the terminal)",
    )
    .action(async (url: string, options: { token: string; fingerprint?: string }) => {
      const origin = httpsOrigin(url);
      const token = await tokenFromStdin(io, options.token);
      const presented = await presentedCertificate(new URL(origin));
      await confirmCertificate(io, origin, presented, options.fingerprint);
      const credential: Credential = {
        url: origin,
        token,
        fingerprint: presented.fingerprint,
        ca: presented.pem,
      };
      // The HTTPS client and the credentials' store (zod) load for login and logout alone.
      const [{ HttpsLaboratory }, { saveCredential }] = await Promise.all([
        import("../laboratory/https.js"),
        import("../laboratory/credentials.js"),
      ]);
      // A read request proves the token and the pinned authority both work before either is kept.
      const lab = new HttpsLaboratory(credential);
      try {
        await lab.list({ v });
      } finally {
        await lab.close();
      }
      await saveCredential(io.env, credential);
      io.stdout(`logged in to ${origin} (certificate authority ${presented.fingerprint} pinned)\n`);
    });

  program
    .command("logout [url]")
    .description(
      "forget the token and the pinned certificate of a laboratory (default: the only one logged in to)",
    )
    .action(async (url: string | undefined) => {
      const origin = url === undefined ? await onlyLaboratory(io) : httpsOrigin(url);
      const { removeCredential } = await import("../laboratory/credentials.js");
      if (await removeCredential(io.env, origin)) io.stdout(`logged out of ${origin}\n`);
      else io.stderr(`not logged in to ${origin}; nothing to forget\n`);
    });
}

function httpsOrigin(url: string): string {
  const address = parseLaboratoryAddress(url);
  if (typeof address !== "string" && address.kind === "https") return laboratoryOrigin(address.url);
  throw new UsageError(`labtest login takes the laboratory's https:// address, not ${url}`, [
    {
      where: "URL",
      what: typeof address === "string" ? address : `a ${address.kind} address`,
      fix: "labtest login https://lab.example.com[:port] --token -",
    },
  ]);
}

/** The token, from standard input only: on the command line it would land in the shell's history. */
async function tokenFromStdin(io: CliIo, given: string): Promise<string> {
  if (given !== "-")
    throw new UsageError("the token is read from standard input, not taken from the command line", [
      {
        where: "--token",
        what: "a token on the command line lands in the shell's history and in the process list",
        fix: "labtest login URL --token - and type or pipe the token (e.g. from a password manager)",
      },
    ]);
  const token = (await io.readStdin()).trim();
  if (token) return token;
  throw new UsageError("no token on standard input", [
    {
      where: "--token -",
      what: "standard input was empty",
      fix: "pipe the token labtest token create printed: … | labtest login URL --token -",
    },
  ]);
}

/**
 * Trust on first use, as ssh: the certificate authority the laboratory presents is accepted when
 * it matches --fingerprint, or when the user confirms its fingerprint at the terminal.
 */
async function confirmCertificate(
  io: CliIo,
  origin: string,
  presented: PresentedCertificate,
  fingerprint: string | undefined,
): Promise<void> {
  const how = `labtest login ${origin} --token - --fingerprint ${presented.fingerprint}`;
  if (fingerprint !== undefined) {
    if (sameFingerprint(fingerprint, presented.fingerprint)) return;
    throw new LabtestError(
      `the laboratory at ${origin} presents another certificate authority than --fingerprint names`,
      [
        {
          where: origin,
          what: `presented ${presented.fingerprint} (${presented.subject}), expected ${fingerprint}; someone may be intercepting the connection`,
          fix: "compare with the fingerprint labtest lab init printed on the laboratory",
        },
      ],
      { exitCode: EXIT_REFUSED },
    );
  }
  const question = `The laboratory at ${origin} presents the certificate authority\n  ${presented.subject}\n  fingerprint ${presented.fingerprint}\nIs this the fingerprint labtest lab init printed on the laboratory? Trust it (y/N)? `;
  const answer = io.isTTY ? await io.askTerminal?.(question) : undefined;
  if (answer !== undefined && /^y(es)?$/i.test(answer.trim())) return;
  throw new LabtestError(
    `the laboratory's certificate authority ${presented.fingerprint} was not confirmed`,
    [
      {
        where: origin,
        what:
          answer === undefined
            ? "no terminal to confirm it at, and no --fingerprint"
            : "not confirmed at the terminal",
        fix: `check it against the fingerprint labtest lab init printed on the laboratory, then: ${how}`,
      },
    ],
    { exitCode: EXIT_REFUSED },
  );
}

/** The laboratory logout means when given none: the only one logged in to. */
async function onlyLaboratory(io: CliIo): Promise<string> {
  const { credentialsFile, readCredentials } = await import("../laboratory/credentials.js");
  const all = await readCredentials(io.env);
  const [only] = all;
  if (only && all.length === 1) return only.url;
  throw new UsageError("which laboratory? labtest logout URL", [
    {
      where: credentialsFile(io.env),
      what: all.length ? `logged in to ${all.map((c) => c.url).join(", ")}` : "logged in to none",
      fix: "labtest logout https://lab.example.com[:port]",
    },
  ]);
}
