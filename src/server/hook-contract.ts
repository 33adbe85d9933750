// What the forced command that installs an app repository's hooks (git-access.ts) and the hooks
// themselves (push-hook.ts) agree on, apart from either: the forced command of every git push and
// fetch, and labtest's command tree, load this without the hooks' work (the configuration, the
// embedded laboratory).

/** The hooks a pushed-to repository runs: `labtest git-hook <hook>`. */
export const PUSH_HOOKS = ["pre-receive", "post-receive"] as const;
export type PushHook = (typeof PUSH_HOOKS)[number];

/** Where receive-pack's hooks learn who pushes: the SSH key's identity, as JSON. */
export const IDENTITY_VARIABLE = "LABTEST_IDENTITY";

/** Where an SSH session came from, for the audit log: "ssh <address>" (SSH_CLIENT's), or "ssh". */
export function sshOrigin(env: NodeJS.ProcessEnv): string {
  const address = env.SSH_CLIENT?.split(" ")[0];
  return address ? `ssh ${address}` : "ssh";
}
