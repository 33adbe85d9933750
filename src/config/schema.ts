import { z } from "zod";
import { RUNTIMES } from "../experiments/runtimes/names.js";
import { SERVICE_KINDS, type ServiceKind, serviceKind } from "../services/kinds/index.js";
import {
  PROVIDER_NAMES as PROVIDERS,
  type Provider,
  providersOffering,
  serviceProvider,
} from "../services/providers/index.js";
import { shellOperator } from "./commands.js";
import { parseLaboratoryAddress } from "./host.js";
import { envPrefix, isValidName, suggestedName } from "./names.js";
import { normalizePattern, PLACEHOLDERS } from "./patterns.js";
import { REPOSITORY_FORMS, repositoryProblem } from "./repository.js";

export const PROVISION_TYPES = ["communal", "independent", "shared"] as const;

export type { Provider };
export { PROVIDERS, RUNTIMES };
export type ProvisionType = (typeof PROVISION_TYPES)[number];
export type Runtime = (typeof RUNTIMES)[number];
export { SERVICE_KINDS, type ServiceKind };

type Ctx = z.RefinementCtx;
export const ENV_KEY = /^[A-Za-z_][A-Za-z0-9_]*$/;
const SERVICE_NAME = /^[A-Za-z][A-Za-z0-9_-]*$/;
const DOMAIN = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;

function problem(ctx: Ctx, message: string, fix: string, path: PropertyKey[] = []): void {
  ctx.addIssue({ code: "custom", message, params: { fix }, path });
}

/** LabTest accepted yes/no/1/0 strings for booleans; so do we, in every format. */
const BOOLEAN_WORDS: Record<string, boolean> = {
  true: true,
  yes: true,
  on: true,
  "1": true,
  false: false,
  no: false,
  off: false,
  "0": false,
};
const booleanish = z.preprocess((value) => {
  if (typeof value === "string") return BOOLEAN_WORDS[value.trim().toLowerCase()] ?? value;
  if (value === 0 || value === 1) return value === 1;
  return value;
}, z.boolean());

/** A text option left empty (`key:` in YAML) means "not set". */
const optionalText = z
  .string()
  .nullish()
  .transform((v) => (v === "" ? undefined : (v ?? undefined)));

/** A configured command: run without a shell, so shell operators in it are an error. */
const command = optionalText.superRefine((value, ctx) => {
  const operator = value === undefined ? undefined : shellOperator(value);
  if (operator)
    problem(
      ctx,
      `uses the shell operator ${operator}, and no shell runs it`,
      "run a shell on purpose: sh -c '…' (or put the steps in a script)",
    );
});

/** Where an app says it is ready: an HTTP path as a request line carries it (no spaces, no fragment). */
const healthCheckPath = z.string().superRefine((value, ctx) => {
  if (!/^\/[\x21-\x7e]*$/.test(value) || value.includes("#"))
    problem(ctx, `"${value}" is not an HTTP path`, "start it with / and leave out spaces, e.g. /healthz");
});

const pattern = z.string().transform((value, ctx) => {
  const result = normalizePattern(value);
  for (const what of result.problems)
    problem(ctx, what, `use only ${PLACEHOLDERS.map((p) => `{${p}}`).join(" ")}`);
  return result.pattern;
});

/**
 * `environment` as LabTest wrote it (a comma-separated string, or a list of KEY=VALUE) or as a
 * mapping; always an ordered KEY → VALUE record afterwards.
 */
export const environment = z.unknown().transform((value, ctx): Record<string, string> => {
  const result: Record<string, string> = {};
  const add = (key: string, val: string, path: PropertyKey[]) => {
    if (!ENV_KEY.test(key)) {
      problem(
        ctx,
        `"${key}" is not a valid environment variable name`,
        "use letters, digits and _ , not starting with a digit",
        path,
      );
    } else if (Object.hasOwn(result, key)) {
      problem(ctx, `${key} is set twice`, "keep one entry for each variable", path);
    } else {
      result[key] = val;
    }
  };
  if (value === null || value === undefined) return result;
  const list = typeof value === "string" ? value.split(",").filter((e) => e.trim() !== "") : value;
  if (Array.isArray(list)) {
    list.forEach((entry, i) => {
      const eq = typeof entry === "string" ? entry.indexOf("=") : -1;
      if (typeof entry !== "string" || eq <= 0) {
        problem(ctx, `entry ${JSON.stringify(entry)} is not KEY=VALUE`, 'write it as "KEY=VALUE"', [i]);
      } else {
        add(entry.slice(0, eq).trim(), entry.slice(eq + 1), [i]);
      }
    });
  } else if (typeof value === "object") {
    for (const [key, val] of Object.entries(value)) {
      if (typeof val === "string" || typeof val === "number" || typeof val === "boolean")
        add(key, String(val), [key]);
      else
        problem(
          ctx,
          `${key} has no text value (got ${val === null ? "nothing" : typeof val})`,
          `write ${key}: "" for an empty value, or a quoted string`,
          [key],
        );
    }
  } else {
    problem(
      ctx,
      `expected a list of KEY=VALUE or a mapping, got ${typeof value}`,
      "see the configuration reference",
      [],
    );
  }
  return result;
});

/**
 * A docker image tag's grammar: the local provider also looks for a version's programs in a
 * directory of that name, which must not climb out (no `/`, no leading `.`) or read as an option.
 */
const VERSION = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const version = z
  .union([z.string(), z.number()])
  .transform(String)
  .refine((v) => VERSION.test(v), {
    error: (issue) => `${JSON.stringify(issue.input)} is not a version`,
    params: { fix: "write a version such as 16 or 10.11" },
  });

/** A count or a number of seconds, as YAML, JSON or an .ini file's text writes it. */
function positive(what: string, example: string, whole: boolean) {
  const error = (issue: { input?: unknown }) => `${JSON.stringify(issue.input)} is not ${what}`;
  const params = { fix: `write ${what}, e.g. ${example}` };
  return z.preprocess(
    (value) => (typeof value === "string" && /^\s*\d+(\.\d+)?\s*$/.test(value) ? Number(value) : value),
    z.number().refine((n) => n > 0 && (!whole || Number.isInteger(n)), { error, params }),
  );
}

export const serviceOptionsSchema = z
  .strictObject({
    version: version.optional(),
    image: z.string().min(1).optional(),
    command: z.union([z.string(), z.array(z.string())]).optional(),
    environment: environment.optional(),
    initial_data: z.string().min(1).optional(),
    copy_from: z.string().min(1).optional(),
    ephemeral: booleanish.optional(),
    /** Seconds a new server may take to answer. */
    wait_timeout: positive("a positive number of seconds", "60", false).optional(),
    /** How many times labtest tries to reach a new server, the waits between them doubling. */
    wait_attempts: positive("a positive whole number", "10", true).optional(),
  })
  .superRefine((options, ctx) => {
    const tag = options.image === undefined ? null : imageTag(options.image);
    if (tag !== null && options.version !== undefined && options.version !== tag)
      problem(
        ctx,
        `image ${options.image} runs version ${tag}, and version says ${options.version}`,
        `keep the version in one place: image: ${options.image} alone, or a tagless image with version`,
        ["version"],
      );
  });

/** The tag of an image reference (`postgres:15` → 15), null without one (a bare name or a digest). */
export function imageTag(reference: string): string | null {
  const name = reference.slice(reference.lastIndexOf("/") + 1).split("@")[0] ?? "";
  const colon = name.indexOf(":");
  return colon < 0 ? null : name.slice(colon + 1);
}

/** What labtest makes of a name LabTest's documentation gives an option: the option it is, or nothing (why). */
export type LabTestName = { is: string } | { ignored: string };

/** LabTest's names of a service's keys. */
export const SERVICE_ALIASES: Readonly<Record<string, LabTestName>> = {
  shared_instance_name: { is: "shared_experiment_name" },
};

/** LabTest's names of a service's options (docs/reference/backing_services/docker.rst). */
export const SERVICE_OPTION_ALIASES: Readonly<Record<string, LabTestName>> = {
  initial_data_source: { is: "initial_data" },
  commands: { is: "command" },
  wait_for_service: {
    ignored: "labtest always waits for a server to answer (wait_timeout and wait_attempts bound the wait)",
  },
};

/** LabTest's names of the section's own options (docs/reference/configuration.rst, builtin_build_process.rst). */
export const SECTION_ALIASES: Readonly<Record<string, LabTestName>> = {
  container_provider: {
    ignored:
      "labtest keeps and runs an experiment's image on the laboratory and pushes it nowhere (LabTest's local; its aws pushed to ECR)",
  },
  build_provider: {
    ignored:
      "labtest builds on the laboratory (LabTest's built-in build process: app_build_image, app_build_command, container_build_command)",
  },
};

/** `schema` over a mapping whose keys may carry LabTest's names, read under labtest's. */
function withLabTestNames<T extends z.ZodType>(aliases: Readonly<Record<string, LabTestName>>, schema: T) {
  return z.preprocess((value, ctx) => {
    if (value === null || typeof value !== "object" || Array.isArray(value)) return value;
    const mapping: Record<string, unknown> = { ...value };
    for (const [alias, name] of Object.entries(aliases)) {
      if (!Object.hasOwn(mapping, alias)) continue;
      if ("is" in name && Object.hasOwn(mapping, name.is))
        problem(ctx, `is LabTest's name for ${name.is}, which is set too`, `keep ${name.is} only`, [alias]);
      else if ("is" in name) mapping[name.is] = mapping[alias];
      delete mapping[alias];
    }
    return mapping;
  }, schema);
}

const serviceShape = z
  .strictObject({
    provider: z.enum(PROVIDERS).default("local"),
    service: z.enum(SERVICE_KINDS),
    provision_type: z.enum(PROVISION_TYPES).default("communal"),
    shared_experiment_name: z.string().min(1).optional(),
    shared_app_name: z.string().min(1).optional(),
    options: withLabTestNames(SERVICE_OPTION_ALIASES, serviceOptionsSchema)
      .nullish()
      .transform((v) => v ?? {}),
  })
  .superRefine((s, ctx) => {
    if (s.provision_type === "shared" && !s.shared_experiment_name) {
      problem(
        ctx,
        "a shared service needs the experiment whose instance it uses",
        "add shared_experiment_name: <experiment>",
        ["shared_experiment_name"],
      );
    }
    if (s.provision_type !== "shared") {
      for (const key of ["shared_experiment_name", "shared_app_name"] as const) {
        if (s[key])
          problem(
            ctx,
            `${key} is only used with provision_type: shared`,
            `remove ${key}, or set provision_type: shared`,
            [key],
          );
      }
    }
    const kind = serviceKind(s.service);
    if (!serviceProvider(s.provider).offers(kind)) {
      problem(
        ctx,
        `provider ${s.provider} cannot run ${s.service}`,
        `use provider: ${providersOffering(kind).join(" or ")}`,
        ["provider"],
      );
    } else if (!serviceProvider(s.provider).createsServers && s.provision_type === "independent") {
      problem(
        ctx,
        `the ${s.provider} provider serves communal tenants only: it cannot create a server`,
        `use provision_type: communal, or provider: ${providersOffering(kind, true).join(" or ")}`,
        ["provision_type"],
      );
    }
  });

export const serviceSchema = withLabTestNames(SERVICE_ALIASES, serviceShape);

const topLevelShape = {
  app_name: optionalText,
  host: optionalText,
  test_domain: optionalText,
  host_name_pattern: pattern.optional(),
  code_repo_url: optionalText,
  runtime: z.enum(RUNTIMES).optional(),
  app_build_image: optionalText,
  app_build_command: command,
  container_build_command: command,
  docker_image_pattern: pattern.optional(),
  start_command: command,
  before_start_command: command,
  health_check_path: healthCheckPath.optional(),
  environment: environment.optional(),
  services: z.record(z.string(), serviceSchema).nullish(),
  use_ssh_config: booleanish.optional(),
  verbose: booleanish.optional(),
};

/** Every option of the labtest section, in the order of the reference. */
export const OPTION_NAMES = Object.keys(topLevelShape) as (keyof typeof topLevelShape)[];
export const SERVICE_OPTION_NAMES = Object.keys(serviceShape.shape);
export const SERVICE_OPTIONS_OPTION_NAMES = Object.keys(serviceOptionsSchema.shape);

/** The labtest section as written: every option optional, types and values checked. */
export const sectionSchema = z.preprocess(
  (v) => v ?? {},
  withLabTestNames(
    SECTION_ALIASES,
    z.strictObject(topLevelShape).superRefine((c, ctx) => {
      if (c.app_name !== undefined && !isValidName(c.app_name)) {
        problem(
          ctx,
          `"${c.app_name}" is not a valid app name (lower-case letters, digits and single hyphens, at most 63)`,
          `use app_name: ${suggestedName(c.app_name)}`,
          ["app_name"],
        );
      }
      if (c.host !== undefined) {
        const address = parseLaboratoryAddress(c.host);
        if (typeof address === "string")
          problem(ctx, address, "use local, ssh://user@host[:port], https://… or user@host", ["host"]);
        // ssh takes its destination as one argument, which it reads as an option if it starts with "-".
        else if (address.kind === "ssh" && `${address.user ?? ""}${address.host}`.startsWith("-"))
          problem(
            ctx,
            `"${c.host}" names a user or host starting with "-": ssh would read it as an option`,
            "write the host first, e.g. ssh://deploy@lab.example.com",
            ["host"],
          );
      }
      if (c.code_repo_url !== undefined) {
        const reason = repositoryProblem(c.code_repo_url);
        if (reason)
          problem(ctx, `${JSON.stringify(c.code_repo_url)} ${reason}`, `use ${REPOSITORY_FORMS}`, [
            "code_repo_url",
          ]);
      }
      if (c.test_domain !== undefined && !DOMAIN.test(c.test_domain)) {
        problem(
          ctx,
          `"${c.test_domain}" is not a domain name`,
          "use lower-case DNS labels separated by dots, e.g. test.example.com",
          ["test_domain"],
        );
      }
      const prefixes = new Map<string, string>();
      for (const name of Object.keys(c.services ?? {})) {
        if (!SERVICE_NAME.test(name)) {
          problem(
            ctx,
            `"${name}" is not a valid service name`,
            "start with a letter; use letters, digits, - and _",
            ["services", name],
          );
          continue;
        }
        const prefix = envPrefix(name);
        const other = prefixes.get(prefix);
        if (other)
          problem(
            ctx,
            `services "${other}" and "${name}" would both set ${prefix}_URL`,
            "rename one of them",
            ["services", name],
          );
        prefixes.set(prefix, name);
      }
    }),
  ),
);

export type Section = z.output<typeof sectionSchema>;
export type ServiceSection = z.output<typeof serviceShape>;
