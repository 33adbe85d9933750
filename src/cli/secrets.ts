import type { Command } from "commander";
import { UsageError } from "../errors.js";
import { labtestHome } from "../lab/home.js";
import { PROTOCOL_VERSION as v } from "../laboratory/protocol-constants.js";
import { type CliIo, writeJson } from "./io.js";
import { withLab } from "./laboratory.js";
import type { StateGlobals } from "./state.js";

/**
 * The shortest value `labtest encrypt` takes. A shorter one is guessed rather than stolen (8 is
 * also NIST's least for a password), and masking it would mangle the rest of the output: "hello"
 * would hide an app's name. Values of 4 to 7 characters encrypted otherwise are still masked.
 */
const SHORTEST_SECRET = 8;

/** `labtest encrypt` and `labtest secrets init`: ENC[…] values for the configuration. */
export function registerSecretCommands(program: Command, io: CliIo): void {
  program
    .command("encrypt [value]")
    .description(
      "encrypt VALUE, or the VALUE of KEY=VALUE, for the laboratory's /secrets provider; - (or nothing) reads it from stdin",
    )
    // LabTest asked "Did you want to encrypt VALUE for key KEY?": y is what KEY=VALUE does unasked.
    .option(
      "--whole",
      "encrypt the whole text, even when it looks like KEY=VALUE (LabTest's answer N to its question)",
    )
    .action(async (value: string | undefined, options: { whole?: boolean }, command: Command) => {
      const globals = command.optsWithGlobals<StateGlobals & { json?: boolean }>();
      // From stdin the value stays out of the shell's history; one final newline is the terminal's.
      const text =
        value === undefined || value === "-" ? (await io.readStdin()).replace(/\r?\n$/, "") : value;
      if (text === "")
        throw new UsageError("nothing to encrypt", [
          {
            where: "VALUE",
            what: "empty",
            fix: "labtest encrypt KEY=VALUE, or pipe the value into labtest encrypt -",
          },
        ]);
      // The secrets' providers (age, KMS) and their schemas load for the commands that use them.
      const { assignment, Secrets } = await import("../secrets/index.js");
      refuseShort(assignment(text, options.whole === true));
      // The value is encrypted here, on the client, with what the laboratory says to encrypt for:
      // the plaintext never travels.
      const config = await withLab(io, globals, undefined, (lab) => lab.secretsRecipients({ v }));
      const secrets = new Secrets({ config, home: labtestHome(io.env) });
      const encrypted = await secrets.encryptAssignment(text, options.whole === true);
      if (globals.json) writeJson(io, { value: encrypted });
      else io.stdout(`${encrypted}\n`);
    });

  const secrets = program.command("secrets").description("the laboratory's secrets");
  secrets
    .command("init")
    .description(
      "create this laboratory's age identity (if missing) and print the /secrets state that encrypts for it",
    )
    .action(async (_options, command: Command) => {
      const globals = command.optsWithGlobals<StateGlobals & { json?: boolean }>();
      const initialised = await withLab(io, globals, undefined, (lab) => lab.secretsInit({ v }));
      const { recipient, created, state } = initialised;
      const { SECRETS_KEY } = await import("../secrets/index.js");
      if (globals.json) writeJson(io, initialised);
      else
        io.stdout(
          `${created ? "created" : "kept"} the laboratory's age identity; its recipient is\n  ${recipient}\n` +
            `put this at ${SECRETS_KEY} in the laboratory's state, for labtest encrypt:\n  ${JSON.stringify(state[SECRETS_KEY])}\n`,
        );
    });
}

/** Refuses to encrypt a value shorter than SHORTEST_SECRET, naming its key but not printing it. */
function refuseShort({ key, value }: { key?: string; value: string }): void {
  const length = [...value].length;
  if (length < SHORTEST_SECRET)
    throw new UsageError("the value to encrypt is too short to be a secret", [
      {
        where: key ?? "VALUE",
        what: `${length} characters`,
        fix: `encrypt a value of ${SHORTEST_SECRET} characters or more, e.g. one that \`openssl rand -base64 24\` makes`,
      },
    ]);
}
