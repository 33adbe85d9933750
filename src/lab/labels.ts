/**
 * Labels on everything labtest creates outside its home (containers, volumes, networks), so
 * the laboratory can always find, account for and clean up what it made.
 */
export const LABELS = {
  /** The laboratory (a hash of its home) that owns the object. */
  laboratory: "labtest.laboratory",
  server: "labtest.server",
  kind: "labtest.kind",
  provisionType: "labtest.provision-type",
  app: "labtest.app",
  experiment: "labtest.experiment",
  service: "labtest.service",
  /** What an app's container or image is for: the app itself, a build step or before_start_command. */
  role: "labtest.role",
  release: "labtest.release",
} as const;
