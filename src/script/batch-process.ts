/**
 * One long-lived Python process running a user's batch scoring script through the tiny driver
 * (./batch_driver.py): started once, `init()` called once, then `run(mini_batch)` per request. Frames on
 * two extra pipes (fd 3 requests, fd 4 answers; 4-byte big-endian length + JSON), so the script's prints
 * cannot corrupt them. The process is this worker's own child, known by its handle, and dies with the
 * worker (the driver asks the kernel for that). Its environment is a short allow-list plus Azure ML's
 * variables: the worker's own secrets never reach the script.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import type { Readable, Writable } from 'node:stream';

import { PermanentError } from '../errors';
import { FailureType } from '../shared/failure-types';
import { lastTraceback } from './traceback';

/** The driver, read from the source tree (dist/src/script → src/script). */
export const BATCH_DRIVER = path.resolve(__dirname, '..', '..', '..', 'src', 'script', 'batch_driver.py');

/** Thrown when the script's init() (or its import) raised: the job cannot go on, whatever retries. */
export class ScriptInitError extends PermanentError {
  constructor(
    readonly lastLine: string,
    readonly traceback: string,
    appDir: string,
  ) {
    // The frame in the user's own code and the error, as the online path reports it (./traceback.ts).
    const why = lastTraceback(traceback, appDir) ?? [lastLine];
    super(
      `The batch scoring script's init() raised:\n${why.join('\n')}\nFix init() (it runs once per Python process) and run the job again.`,
      FailureType.ScriptInitFailed,
    );
    this.name = 'ScriptInitError';
  }
}

/** Thrown when the Python process ended while it held a request, or before it was ready (OOM, segfault, a kill). */
export class ScriptProcessExitedError extends Error {
  constructor(
    readonly code: number | null,
    readonly signal: NodeJS.Signals | null,
    readonly outputTail: string,
  ) {
    const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
    super(`the batch scoring script's Python process ${how}${outputTail ? `:\n${outputTail}` : ''}`);
    this.name = 'ScriptProcessExitedError';
  }
}

/** What one run(mini_batch) answered: its rows, or the exception it raised. */
export type RunAnswer = { rows: unknown[] } | { error: string; traceback: string } | { timedOut: true };

export interface ScriptProcessOptions {
  python: string;
  entryScript: string;
  /** AML_APP_ROOT: the copy of the source folder, with azureml-models/ laid out in it; the process's cwd. */
  appDir: string;
  /** AZUREML_MODEL_DIR. */
  modelDir: string;
  /** The entry script relative to appDir (AZUREML_ENTRY_SCRIPT). */
  entryRelative: string;
}

const KEEP_ENV = ['PATH', 'HOME', 'LANG', 'LC_ALL', 'TZ', 'TMPDIR', 'CUDA_VISIBLE_DEVICES', 'OMP_NUM_THREADS'];

export class ScriptProcess {
  private readonly child: ChildProcess;
  private readonly requests: Writable;
  private buffered = Buffer.alloc(0);
  private waiting?: { resolve: (m: unknown) => void; reject: (e: Error) => void };
  private tail = '';
  /** Requests written whose answers are not read yet (a process lent again must have none). */
  private outstanding = 0;
  private exitError?: ScriptProcessExitedError;

  private constructor(opts: ScriptProcessOptions) {
    const env: NodeJS.ProcessEnv = {};
    for (const name of KEEP_ENV) if (process.env[name] !== undefined) env[name] = process.env[name];
    this.child = spawn(opts.python, ['-u', BATCH_DRIVER, opts.entryScript], {
      cwd: opts.appDir,
      env: {
        ...env,
        PYTHONDONTWRITEBYTECODE: '1',
        AML_APP_ROOT: opts.appDir,
        AZUREML_MODEL_DIR: opts.modelDir,
        AZUREML_ENTRY_SCRIPT: opts.entryRelative,
      },
      stdio: ['ignore', 'pipe', 'pipe', 'pipe', 'pipe'],
    });
    const keepTail = (chunk: Buffer) => (this.tail = (this.tail + chunk.toString('utf8')).slice(-16 * 1024));
    this.child.stdout!.on('data', keepTail);
    this.child.stderr!.on('data', keepTail);
    this.requests = this.child.stdio[3] as Writable;
    this.requests.on('error', () => undefined); // a dead process: its exit says so
    const answers = this.child.stdio[4] as Readable;
    answers.on('data', (chunk: Buffer) => this.onData(chunk));
    this.child.once('exit', (code, signal) => {
      this.exitError = new ScriptProcessExitedError(code, signal, lastLines(this.tail, 8));
      this.waiting?.reject(this.exitError);
      this.waiting = undefined;
    });
    this.child.once('error', (err) => {
      this.exitError ??= new ScriptProcessExitedError(null, null, err.message);
      this.waiting?.reject(this.exitError);
      this.waiting = undefined;
    });
  }

  /** Starts the process and waits for init(); throws ScriptInitError when it raised. */
  static async start(opts: ScriptProcessOptions): Promise<ScriptProcess> {
    const p = new ScriptProcess(opts);
    try {
      const first = (await p.next()) as { ready?: boolean; initError?: string; traceback?: string };
      if (first.initError !== undefined) throw new ScriptInitError(first.initError, first.traceback ?? '', opts.appDir);
    } catch (err) {
      p.kill();
      throw err;
    }
    return p;
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Alive and owing no answer: safe to lend to the next shard. */
  get reusable(): boolean {
    return this.alive && this.outstanding === 0;
  }

  get alive(): boolean {
    return this.exitError === undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /**
   * Calls run(paths). A process that dies meanwhile rejects with ScriptProcessExitedError; one that takes
   * longer than `timeoutMs` is killed and answers `{ timedOut: true }` (the process is then gone).
   */
  async run(paths: string[], timeoutMs: number): Promise<RunAnswer> {
    if (this.exitError) throw this.exitError;
    const body = Buffer.from(JSON.stringify({ paths }));
    const head = Buffer.alloc(4);
    head.writeUInt32BE(body.length);
    this.outstanding++;
    this.requests.write(Buffer.concat([head, body]));
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), timeoutMs)));
    try {
      const answer = await Promise.race([this.next(), timedOut]);
      if (answer !== 'timeout') this.outstanding--;
      if (answer === 'timeout') {
        this.kill();
        return { timedOut: true };
      }
      const a = answer as { rows?: unknown[]; error?: string; traceback?: string };
      if (Array.isArray(a.rows)) return { rows: a.rows };
      return { error: a.error ?? 'run() failed', traceback: a.traceback ?? '' };
    } finally {
      clearTimeout(timer);
    }
  }

  /** Ends the process (SIGKILL: a script mid-run holds nothing that must be flushed). */
  kill(): void {
    this.waiting = undefined;
    if (this.alive) this.child.kill('SIGKILL');
  }

  private next(): Promise<unknown> {
    if (this.exitError) return Promise.reject(this.exitError);
    return new Promise((resolve, reject) => {
      this.waiting = { resolve, reject };
      this.drain();
    });
  }

  private onData(chunk: Buffer): void {
    this.buffered = Buffer.concat([this.buffered, chunk]);
    this.drain();
  }

  private drain(): void {
    if (!this.waiting || this.buffered.length < 4) return;
    const length = this.buffered.readUInt32BE(0);
    if (this.buffered.length < 4 + length) return;
    const body = this.buffered.subarray(4, 4 + length).toString('utf8');
    this.buffered = this.buffered.subarray(4 + length);
    const { resolve } = this.waiting;
    this.waiting = undefined;
    resolve(JSON.parse(body));
  }
}

function lastLines(text: string, n: number): string {
  return text.trim().split('\n').slice(-n).join('\n');
}
