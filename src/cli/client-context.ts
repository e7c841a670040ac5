import type { Client } from '@temporalio/client';

import { connectClient } from '../temporal/connection';
import { createOutput } from './output';
import type { Output } from './output';

/** What a command that talks to Temporal is given: a client, its namespace and the output. */
export interface CommandContext {
  client: Client;
  namespace: string;
  out: Output;
}

/** What `withClient` connects: a command's context and the connection it closes afterwards. */
export type ClientContext = Awaited<ReturnType<typeof connect>>;

/** Connects, runs `fn`, and always closes the connection. */
export async function withClient<T>(json: boolean, fn: (ctx: ClientContext) => Promise<T>): Promise<T> {
  const ctx = await connect(json);
  try {
    return await fn(ctx);
  } finally {
    await ctx.connection.close();
  }
}

async function connect(json: boolean) {
  const { client, connection, namespace } = await connectClient();
  return { client, connection, namespace, out: createOutput(json) };
}
