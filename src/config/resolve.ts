import { basename, dirname, isAbsolute } from "node:path";
import type { ConfigError, Problem } from "../errors.js";
import { dottedKey, problemsFromIssues } from "../problems.js";
import { serviceKind } from "../services/kinds/index.js";
import { oldServerNote } from "../services/kinds/mysql.js";
import { initialDataDirectoriesKey } from "../state/keys.js";
import { findConfig } from "./discover.js";
import { type ConfigDocument, SECTION } from "./formats.js";
import { gitOriginUrl, gitToplevel } from "./git.js";
import { type LaboratoryAddress, parseLaboratoryAddress } from "./host.js";
import { appName, experimentName } from "./names.js";
import { configError } from "./report.js";
import { REPOSITORY_FORMS, repositoryProblem } from "./repository.js";
import type {
  LabTestName,
  Provider,
  ProvisionType,
  Runtime,
  Section,
  ServiceKind,
  ServiceSection,
} from "./schema.js";
import {
  imageTag,
  OPTION_NAMES,
  SECTION_ALIASES,
  SERVICE_ALIASES,
  SERVICE_OPTION_ALIASES,
  SERVICE_OPTION_NAMES,
  SERVICE_OPTIONS_OPTION_NAMES,
  sectionSchema,
} from "./schema.js";

/** A backing service as the experiment asks for it, with every default filled in. */
export interface ServiceConfig {
  provider: Provider;
  service: ServiceKind;
  provision_type: ProvisionType;
  /** For `shared`: the experiment and app whose instance is reused; null otherwise. */
  shared_experiment_name: string | null;
  shared_app_name: string | null;
  options: ServiceSection["options"];
}

/** A service as the schema resolves it, for callers that build configurations in code. */
export function serviceConfig(
  provider: Provider,
  service: ServiceKind,
  provisionType: ProvisionType = "communal",
  more: Partial<Omit<ServiceConfig, "provider" | "service" | "provision_type">> = {},
): ServiceConfig {
  return {
    provider,
    service,
    provision_type: provisionType,
    shared_experiment_name: null,
    shared_app_name: null,
    options: {},
    ...more,
  };
}

/** The experiment configuration with every default filled in. */
export interface ExperimentConfig {
  app_name: string;
  host: string;
  /** `host`, parsed: where the laboratory is and how to reach it. */
  laboratory: LaboratoryAddress;
  test_domain: string;
  host_name_pattern: string;
  /**
   * Where the laboratory checks branches out from; null outside git when not set (services need
   * no repository; create and update say so).
   */
  code_repo_url: string | null;
  /** How the app runs: `docker` (its image's CMD, or start_command) or `local` (start_command). */
  runtime: Runtime;
  app_build_image: string | null;
  app_build_command: string | null;
  /** null: the built-in `docker build` of the checkout's Dockerfile. */
  container_build_command: string | null;
  docker_image_pattern: string;
  start_command: string | null;
  before_start_command: string | null;
  /** The path create and update ask the app for until it answers (any status), directly and through the router. */
  health_check_path: string;
  environment: Record<string, string>;
  services: Record<string, ServiceConfig>;
  use_ssh_config: boolean;
  verbose: boolean;
}

export type OptionName = Exclude<keyof ExperimentConfig, "laboratory">;

/** Where a resolved value came from: a key of the file, or a default (and what it derived from). */
export type ValueSource =
  | { from: "file"; file: string; key: string; line?: number }
  | { from: "environment"; variable: string }
  | { from: "default"; detail: string };

export interface LoadedConfig {
  /** The file the configuration was read from. */
  file: string;
  /** The directory holding that file: relative paths in the configuration are relative to it. */
  directory: string;
  config: ExperimentConfig;
  sources: Record<OptionName, ValueSource>;
  /** What labtest read in a way it accepts but spells otherwise (LabTest's names), one line each. */
  notes: string[];
  /** The LABTEST_<OPTION> variables that set options over the file, kept for the branch's configuration. */
  variables: Record<string, string>;
}

export interface LoadOptions {
  /** Where discovery starts (default: the process's working directory). */
  cwd?: string;
  /** An explicit configuration file (`--config`). */
  configPath?: string;
  /**
   * The app's name and repository, when they are known already: a branch's configuration read
   * on the laboratory keeps them, and git is not run in a checkout an app's account owns.
   */
  identity?: Pick<ExperimentConfig, "app_name" | "code_repo_url">;
  /** Environment variables: LABTEST_<OPTION> (LABTEST_TEST_DOMAIN, …) sets an option over the file. */
  env?: Record<string, string | undefined>;
}

/** Every option but the structured `services` may come from LABTEST_<OPTION>: labtest's own (LabTest's click read only LABTEST_CONFIG and LABTEST_VERBOSE). */
const VARIABLE_PREFIX = "LABTEST_";
const OPTIONS_FROM_VARIABLES = OPTION_NAMES.filter((key) => key !== "services");

const BUILT_IN = {
  host: "local",
  test_domain: "localhost",
  host_name_pattern: "{app_name}-{experiment}",
  docker_image_pattern: "{app_name}/{experiment}:latest",
} as const;

/** Finds, reads and validates the experiment configuration, filling in every default. */
export async function loadConfig(options: LoadOptions = {}): Promise<LoadedConfig> {
  const doc = await findConfig(options.cwd ?? process.cwd(), options.configPath);
  const parsed = sectionSchema.safeParse(doc.section, { reportInput: true });
  if (!parsed.success) {
    throw invalid(
      doc,
      problemsFromIssues(parsed.error.issues, {
        keyName: (path) => dottedKey([SECTION, ...writtenPath(doc.section, path)]),
        lineOf: (path) => doc.lineOf(writtenPath(doc.section, path)),
        knownKeysAt: optionsAt,
      }),
    );
  }
  const variables = optionVariables(options.env ?? {});
  return resolveSection(
    doc,
    { ...parsed.data, ...parseVariables(variables), ...options.identity },
    variables,
  );
}

/** The LABTEST_<OPTION> variables of `env` that name an option. */
function optionVariables(env: Record<string, string | undefined>): Record<string, string> {
  return Object.fromEntries(
    OPTIONS_FROM_VARIABLES.flatMap((key) => {
      const value = env[`${VARIABLE_PREFIX}${key.toUpperCase()}`];
      return value === undefined ? [] : [[`${VARIABLE_PREFIX}${key.toUpperCase()}`, value]];
    }),
  );
}

/** The options the variables set, checked as the file's are (`yes`, `a=1,b=2` as in an INI file). */
function parseVariables(variables: Record<string, string>): Partial<Section> {
  const section = Object.fromEntries(
    Object.entries(variables).map(([name, value]) => [
      name.slice(VARIABLE_PREFIX.length).toLowerCase(),
      value,
    ]),
  );
  const parsed = sectionSchema.safeParse(section, { reportInput: true });
  if (parsed.success) return parsed.data;
  const variable = (path: readonly PropertyKey[]) => `${VARIABLE_PREFIX}${String(path[0]).toUpperCase()}`;
  throw configError(
    "the LABTEST_ environment variables are invalid",
    problemsFromIssues(parsed.error.issues, {
      keyName: (path) => `environment variable ${variable(path)}`,
      lineOf: () => undefined,
      knownKeysAt: optionsAt,
    }).map((problem) => ({ ...problem, fix: `${problem.fix ?? "correct it"}, or unset it` })),
  );
}

async function resolveSection(
  doc: ConfigDocument,
  section: Omit<Section, "code_repo_url"> & { code_repo_url?: string | null },
  variables: Record<string, string>,
): Promise<LoadedConfig> {
  const directory = dirname(doc.file);
  const problems: Problem[] = [];
  const sources = {} as Record<OptionName, ValueSource>;
  const fromFile = (key: OptionName): ValueSource => {
    const line = doc.lineOf([key]);
    return { from: "file", file: doc.file, key: `labtest.${key}`, ...(line === undefined ? {} : { line }) };
  };
  function pick<T>(key: OptionName, value: T | undefined, fallback: T, detail: string): T {
    const variable = `${VARIABLE_PREFIX}${key.toUpperCase()}`;
    if (value === undefined) sources[key] = { from: "default", detail };
    else sources[key] = variable in variables ? { from: "environment", variable } : fromFile(key);
    return value ?? fallback;
  }

  // Git is asked only for the defaults it supplies.
  const needsGit = section.app_name === undefined || section.code_repo_url === undefined;
  const toplevel = needsGit ? await gitToplevel(directory) : undefined;
  let app = section.app_name;
  if (app === undefined) {
    if (toplevel) app = appName(basename(toplevel));
    else problems.push(notInGit("app_name", directory, "set app_name"));
  }
  let repo: string | null | undefined = section.code_repo_url;
  let repoDetail = "";
  if (repo === undefined && toplevel) {
    const origin = await gitOriginUrl(toplevel);
    repo = origin ?? toplevel;
    repoDetail = origin
      ? "the origin remote of the local repository"
      : "the local repository's path (it has no origin remote)";
    const reason = origin === undefined ? undefined : repositoryProblem(origin);
    if (reason)
      problems.push({
        where: "labtest.code_repo_url",
        what: `the origin remote ${JSON.stringify(origin)} ${reason}`,
        fix: `set code_repo_url to ${REPOSITORY_FORMS}`,
      });
  } else if (repo === undefined) {
    repo = null;
    repoDetail = `none: ${directory} is not inside a git repository (create and update need it)`;
  }
  if (problems.length > 0 || app === undefined) throw invalid(doc, problems);

  const host = pick("host", section.host, BUILT_IN.host, "the embedded laboratory on this machine");
  const config: ExperimentConfig = {
    app_name: pick("app_name", section.app_name, app, `name of the git top-level directory ${toplevel}`),
    host,
    laboratory: parseLaboratoryAddress(host) as LaboratoryAddress,
    test_domain: pick("test_domain", section.test_domain, BUILT_IN.test_domain, "built-in"),
    host_name_pattern: pick(
      "host_name_pattern",
      section.host_name_pattern,
      BUILT_IN.host_name_pattern,
      "built-in",
    ),
    code_repo_url: pick("code_repo_url", section.code_repo_url, repo, repoDetail),
    runtime: pick(
      "runtime",
      section.runtime,
      section.start_command === undefined ? "docker" : "local",
      section.start_command === undefined
        ? "docker: no start_command, so the image's CMD runs"
        : "local: start_command is set",
    ),
    app_build_image: pick("app_build_image", section.app_build_image, null, "none: no separate build step"),
    app_build_command: pick(
      "app_build_command",
      section.app_build_command,
      null,
      "none: no separate build step",
    ),
    container_build_command: pick(
      "container_build_command",
      section.container_build_command,
      null,
      "built-in docker build of the checkout's Dockerfile",
    ),
    docker_image_pattern: pick(
      "docker_image_pattern",
      section.docker_image_pattern,
      BUILT_IN.docker_image_pattern,
      "built-in",
    ),
    start_command: pick(
      "start_command",
      section.start_command,
      null,
      "none: docker apps use their image's CMD",
    ),
    before_start_command: pick("before_start_command", section.before_start_command, null, "none"),
    health_check_path: pick(
      "health_check_path",
      section.health_check_path,
      "/",
      "built-in: the app's home page",
    ),
    environment: pick("environment", section.environment, {}, "empty"),
    services: resolveServices(section.services ?? {}, app),
    use_ssh_config: pick("use_ssh_config", section.use_ssh_config, false, "built-in"),
    verbose: pick("verbose", section.verbose, false, "built-in"),
  };
  sources.services = section.services ? fromFile("services") : { from: "default", detail: "none" };
  const ordered = Object.fromEntries(OPTION_NAMES.map((key) => [key, sources[key]])) as typeof sources;
  return {
    file: doc.file,
    directory,
    config,
    sources: ordered,
    notes: [...aliasNotes(doc), ...laboratoryNotes(doc, config)],
    variables,
  };
}

/**
 * A note for each of LabTest's option names the file uses: what labtest reads it as, or why not
 * at all. A file that uses any was written for LabTest, so its services without provision_type
 * get a note too: LabTest's default was independent, labtest's is communal.
 */
function aliasNotes(doc: ConfigDocument): string[] {
  const section = mapping(doc.section);
  const services = Object.entries(mapping(section.services));
  const aliases = [
    ...namesIn(doc, [], section),
    ...services.flatMap(([name, service]) => [
      ...namesIn(doc, ["services", name], mapping(service)),
      ...namesIn(doc, ["services", name, "options"], mapping(mapping(service).options)),
    ]),
  ];
  if (aliases.length === 0) return [];
  const communal = services
    .filter(([, service]) => !Object.hasOwn(mapping(service), "provision_type"))
    .map(
      ([name]) =>
        `${located(doc, ["services", name])} has no provision_type: labtest's default is communal, LabTest's was independent (set provision_type: independent to keep a server per experiment)`,
    );
  return [...aliases, ...communal];
}

function namesIn(doc: ConfigDocument, at: string[], written: Record<string, unknown>): string[] {
  return Object.entries(aliasesAt(at))
    .filter(([alias]) => Object.hasOwn(written, alias))
    .map(([alias, name]) => {
      const meaning = "is" in name ? `is LabTest's name for ${name.is}` : `is ignored: ${name.ignored}`;
      return `${located(doc, [...at, alias])} ${meaning}`;
    });
}

/** A key as the file writes it, with its line where known: `line 9, labtest.services.db.options.image`. */
function located(doc: ConfigDocument, written: PropertyKey[]): string {
  const line = doc.lineOf(written);
  const key = dottedKey([SECTION, ...written]);
  return line === undefined ? key : `line ${line}, ${key}`;
}

/**
 * What the laboratory will refuse or must allow, as far as the file tells: an image of a MySQL
 * too old for tenants, initial data at an absolute path (a branch's is read on the laboratory).
 */
function laboratoryNotes(doc: ConfigDocument, config: ExperimentConfig): string[] {
  return Object.entries(config.services).flatMap(([name, { service, options }]) => {
    const at = (option: string) =>
      located(doc, writtenPath(doc.section, ["services", name, "options", option]));
    const notes: string[] = [];
    const tag = options.image === undefined ? null : imageTag(options.image);
    const reference = options.image ?? serviceKind(service).container?.repository;
    const version = tag ?? options.version;
    const old = reference && version ? oldServerNote(reference, version) : null;
    if (old) notes.push(`${at(tag ? "image" : "version")}: ${tag ? options.image : version} ${old}`);
    if (options.initial_data !== undefined && isAbsolute(options.initial_data))
      notes.push(
        `${at("initial_data")}: ${options.initial_data} is read on the laboratory when the branch's .labtest.yml names it, only inside a directory its administrator allows in state at ${initialDataDirectoriesKey(config.app_name)}`,
      );
    return notes;
  });
}

/** LabTest's names that apply in the mapping at `at`: the section's, a service's, or its options'. */
function aliasesAt(at: readonly PropertyKey[]): Readonly<Record<string, LabTestName>> {
  if (at.length === 0) return SECTION_ALIASES;
  if (at[0] === "services" && at.length === 2) return SERVICE_ALIASES;
  if (at[0] === "services" && at.length === 3 && at[2] === "options") return SERVICE_OPTION_ALIASES;
  return {};
}

/** `path` as the file spells it: where an option was given under LabTest's name, that name. */
function writtenPath(section: unknown, path: readonly PropertyKey[]): PropertyKey[] {
  const written: PropertyKey[] = [];
  let node = section;
  for (const key of path) {
    const here = mapping(node);
    const alias = Object.hasOwn(here, key)
      ? undefined
      : Object.entries(aliasesAt(written)).find(
          ([alias, name]) => "is" in name && name.is === key && Object.hasOwn(here, alias),
        )?.[0];
    const step = alias ?? key;
    written.push(step);
    node = here[step as string];
  }
  return written;
}

function mapping(value: unknown): Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : {};
}

function resolveServices(
  services: NonNullable<Section["services"]>,
  app: string,
): Record<string, ServiceConfig> {
  return Object.fromEntries(
    Object.entries(services).map(([name, s]) => {
      const shared = s.provision_type === "shared";
      const service: ServiceConfig = {
        provider: s.provider,
        service: s.service,
        provision_type: s.provision_type,
        shared_experiment_name:
          shared && s.shared_experiment_name ? experimentName(s.shared_experiment_name) : null,
        shared_app_name: shared ? (s.shared_app_name ?? app) : null,
        options: s.options,
      };
      return [name, service];
    }),
  );
}

/** The options that are valid at a path of the section (top level, a service, its options). */
function optionsAt(path: readonly PropertyKey[]): readonly string[] {
  if (path[0] === "services" && path.length === 2) return SERVICE_OPTION_NAMES;
  if (path[0] === "services" && path.length === 3) return SERVICE_OPTIONS_OPTION_NAMES;
  return OPTION_NAMES;
}

function notInGit(key: OptionName, directory: string, fix: string): Problem {
  return {
    where: `labtest.${key}`,
    what: `not set, and ${directory} is not inside a git repository to derive it from`,
    fix,
  };
}

function invalid(doc: ConfigDocument, problems: Problem[]): ConfigError {
  return configError(`configuration ${doc.file} is invalid`, problems);
}
