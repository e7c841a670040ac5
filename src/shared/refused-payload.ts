/**
 * What a worker that holds payload keys makes of a payload nobody encrypted (payload-codec.ts): the codec
 * drops its data and leaves a marker with this encoding, the payload converter turns the marker into a
 * `RefusedPayload`, and the workflow inbound interceptor (workflows/refuse-unencrypted.ts) refuses any start,
 * signal, Update or query that carries one. Refusing there, not in the codec, keeps one bad message from
 * failing the whole workflow task: a deployment that an unencrypted signal reached would otherwise answer
 * nothing more (no query, no Update, no TTL teardown). Workflow-safe: plain values.
 */
export const REFUSED_ENCODING = 'binary/refused-unencrypted';

/** The sentence every refusal says. */
export function unencryptedRefusal(encoding: string): string {
  return (
    `Refused an unencrypted payload (encoding ${encoding || 'none'}): this worker holds payload keys and acts only ` +
    'on encrypted input. Start workflows and send signals and Updates with inferctl (or a client with the same ' +
    'INFERCTL_CODEC_KEYS); to finish histories from before encryption, set INFERCTL_CODEC_ACCEPT_PLAINTEXT=1.'
  );
}

/** An argument that arrived unencrypted: what it said is gone, only its encoding is kept. */
export class RefusedPayload {
  constructor(readonly encoding: string) {}
}

/** The first refused argument among `args`, if any. */
export function refusedArgument(args: readonly unknown[]): RefusedPayload | undefined {
  return args.find((arg): arg is RefusedPayload => arg instanceof RefusedPayload);
}
