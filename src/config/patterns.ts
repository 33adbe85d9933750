/** The placeholders a name pattern may use. */
export const PLACEHOLDERS = ["app_name", "experiment", "branch", "release"] as const;
export type Placeholder = (typeof PLACEHOLDERS)[number];
export type PatternValues = Record<Placeholder, string>;

/** LabTest's `%(NAME)s` placeholders and the ones they mean here. */
const LABTEST_PLACEHOLDERS: Record<string, Placeholder> = {
  APP_NAME: "app_name",
  INSTANCE_NAME: "experiment",
  EXPERIMENT: "experiment",
  BRANCH_NAME: "branch",
  RELEASE: "release",
};

/**
 * Rewrites LabTest's `%(APP_NAME)s` form into `{app_name}` and checks that every placeholder
 * is known. Returns the pattern in the `{…}` form, or the problems found.
 */
export function normalizePattern(pattern: string): { pattern: string; problems: string[] } {
  const problems: string[] = [];
  const converted = pattern.replace(/%\(([^)]*)\)s/g, (_, name: string) => {
    const placeholder = LABTEST_PLACEHOLDERS[name];
    if (placeholder) return `{${placeholder}}`;
    problems.push(`unknown placeholder %(${name})s (known: ${Object.keys(LABTEST_PLACEHOLDERS).join(", ")})`);
    return "";
  });
  for (const [, name] of converted.matchAll(/\{([^}]*)\}/g)) {
    if (!(PLACEHOLDERS as readonly string[]).includes(name ?? "")) {
      problems.push(`unknown placeholder {${name}} (known: ${PLACEHOLDERS.map((p) => `{${p}}`).join(", ")})`);
    }
  }
  return { pattern: converted, problems };
}

/** Fills a normalised pattern's placeholders. */
export function expandPattern(pattern: string, values: PatternValues): string {
  return pattern.replace(/\{([a-z_]+)\}/g, (whole, name: string) =>
    Object.hasOwn(values, name) ? values[name as Placeholder] : whole,
  );
}
