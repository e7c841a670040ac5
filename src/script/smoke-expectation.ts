/**
 * A script deployment's smoke expectations, checked against the answer's body: the top-1 label of a
 * classifier-shaped answer, a value at a JSON path, or a piece of text. Pure functions: the CLI parses the
 * flags with them, the smoke activity checks with them.
 */
import type { ScriptSmokeSpec } from '../shared/deploy-types';

/** `predictions.0.label=cat` / `$.label="cat"` → path and value; undefined when there is no '='. */
export function parseExpectJson(flag: string): { path: string; value: string } | undefined {
  const at = flag.indexOf('=');
  if (at <= 0) return undefined;
  return { path: flag.slice(0, at).trim(), value: flag.slice(at + 1) };
}

/** The path's steps: `$.a[0].b`, `a.0.b` → ['a', 0, 'b']; undefined when it cannot be read. */
export function jsonPathSteps(path: string): Array<string | number> | undefined {
  const body = path.replace(/^\$/, '');
  const steps: Array<string | number> = [];
  const re = /\[(\d+)\]|\[["']([^"']*)["']\]|\.?([^.[\]]+)/gy;
  let m: RegExpExecArray | null;
  let consumed = 0;
  while ((m = re.exec(body)) !== null) {
    consumed = re.lastIndex;
    if (m[1] !== undefined) steps.push(Number(m[1]));
    else if (m[2] !== undefined) steps.push(m[2]);
    else if (m[3] !== undefined) steps.push(/^\d+$/.test(m[3]) ? Number(m[3]) : m[3]);
  }
  return consumed === body.length ? steps : undefined;
}

function valueAt(doc: unknown, steps: Array<string | number>): { found: boolean; value?: unknown } {
  let current = doc;
  for (const step of steps) {
    if (typeof step === 'number' && Array.isArray(current) && step < current.length) current = current[step];
    else if (current !== null && typeof current === 'object' && Object.hasOwn(current, String(step))) {
      current = (current as Record<string, unknown>)[String(step)];
    } else return { found: false };
  }
  return { found: true, value: current };
}

/** The expected value as the user wrote it: JSON when it parses (`0.5`, `"cat"`, `true`), else the text itself. */
function expectedValue(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** The top-1 label of a classifier-shaped answer: {"predictions":[{"label"}…]}, [{"label"}…] or {"label"}. */
export function topLabel(doc: unknown): string | undefined {
  const first = (list: unknown) => (Array.isArray(list) ? (list[0] as unknown) : undefined);
  const candidates = [first((doc as { predictions?: unknown } | null)?.predictions), first(doc), doc];
  for (const c of candidates) {
    const label = (c as { label?: unknown } | null | undefined)?.label;
    if (typeof label === 'string') return label;
  }
  return undefined;
}

/** What the smoke spec checks, in a phrase; undefined when it checks the status only. */
export function describeExpectation(smoke: ScriptSmokeSpec): string | undefined {
  if (smoke.expectLabel !== undefined) return `top label "${smoke.expectLabel}"`;
  if (smoke.expectJson) return `${smoke.expectJson.path} = ${smoke.expectJson.value}`;
  if (smoke.expectContains !== undefined) return `contains ${JSON.stringify(smoke.expectContains)}`;
  return undefined;
}

/** Why the answer's body does not meet the expectation, or undefined when it does. */
export function expectationProblem(smoke: ScriptSmokeSpec, body: string): string | undefined {
  if (smoke.expectContains !== undefined) {
    return body.includes(smoke.expectContains)
      ? undefined
      : `the answer does not contain ${JSON.stringify(smoke.expectContains)}`;
  }
  if (smoke.expectLabel === undefined && !smoke.expectJson) return undefined;
  let doc: unknown;
  try {
    doc = JSON.parse(body);
  } catch {
    return 'the answer is not JSON';
  }
  if (smoke.expectLabel !== undefined) {
    const label = topLabel(doc);
    if (label === undefined)
      return 'the answer is not classifier-shaped JSON ({"predictions":[{"label",…}]}, [{"label",…}] or {"label",…})';
    return label === smoke.expectLabel ? undefined : `the top label is "${label}", not "${smoke.expectLabel}"`;
  }
  const { path, value } = smoke.expectJson!;
  const steps = jsonPathSteps(path);
  if (!steps) return `the JSON path ${path} cannot be read (write it as a.0.b or $.a[0].b)`;
  const at = valueAt(doc, steps);
  if (!at.found) return `the answer has nothing at ${path}`;
  const expected = expectedValue(value);
  const same =
    JSON.stringify(at.value) === JSON.stringify(expected) || (typeof at.value === 'string' && at.value === value);
  return same ? undefined : `${path} is ${JSON.stringify(at.value)}, not ${JSON.stringify(expected)}`;
}

/** Problems with the spec itself (for validate): every one. */
export function scriptSmokeProblems(smoke: ScriptSmokeSpec): string[] {
  const problems: string[] = [];
  const given = [smoke.expectLabel, smoke.expectJson, smoke.expectContains].filter((e) => e !== undefined).length;
  if (given > 1) problems.push('give at most one of --expect-label, --expect-json and --expect-contains');
  const status = smoke.expectStatus;
  if (status !== undefined && !(Number.isInteger(status) && status >= 100 && status <= 599)) {
    problems.push(`expected status must be an HTTP status from 100 to 599 (got ${status})`);
  }
  if (smoke.expectJson && !jsonPathSteps(smoke.expectJson.path)) {
    problems.push(`the JSON path ${smoke.expectJson.path} cannot be read (write it as a.0.b or $.a[0].b)`);
  }
  return problems;
}
