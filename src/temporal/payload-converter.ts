/**
 * The payload converter client and workers share (the workflow bundle takes it by path, see
 * scripts/bundle-workflows.ts): the SDK's default converters, plus one that reads the marker a worker's codec
 * leaves for an unencrypted payload (src/shared/refused-payload.ts) as a `RefusedPayload`, for the workflow's
 * inbound interceptor to refuse. Workflow-safe: the SDK's common package and shared values only.
 */
import {
  BinaryPayloadConverter,
  CompositePayloadConverter,
  JsonPayloadConverter,
  UndefinedPayloadConverter,
} from '@temporalio/common';
import type { Payload, PayloadConverterWithEncoding } from '@temporalio/common';
import { decode } from '@temporalio/common/lib/encoding';

import { REFUSED_ENCODING, RefusedPayload } from '../shared/refused-payload';

class RefusedPayloadConverter implements PayloadConverterWithEncoding {
  readonly encodingType = REFUSED_ENCODING;

  toPayload(): Payload | undefined {
    return undefined; // never written: only a worker's codec makes the marker
  }

  fromPayload<T>(payload: Payload): T {
    const was = payload.metadata?.['refused-encoding'];
    return new RefusedPayload(was ? decode(was) : '') as T;
  }
}

export const payloadConverter = new CompositePayloadConverter(
  new UndefinedPayloadConverter(),
  new BinaryPayloadConverter(),
  new JsonPayloadConverter(),
  new RefusedPayloadConverter(),
);
