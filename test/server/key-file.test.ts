/**
 * Which key files the scoring server accepts: its own 0600/0400 file (the local target), and a Kubernetes
 * Secret mounted with defaultMode 0440 under the pod's fsGroup (root-owned, group ours); never a key
 * others can read, nor one open to a group that is not ours or is writable by a group.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { keyFileProblem } from '../../src/server/key-file';

describe('API key file check', () => {
  const ours = [1000];
  const file = (mode: number, uid: number, gid: number) => ({ mode: 0o100000 | mode, uid, gid });

  test('accepts a file only its owner can read, and a Secret mounted 0440 root:<our group>', () => {
    assert.equal(keyFileProblem(file(0o600, 1000, 1000), ours), undefined);
    assert.equal(keyFileProblem(file(0o400, 1000, 1000), ours), undefined);
    assert.equal(keyFileProblem(file(0o440, 0, 1000), ours), undefined, 'defaultMode 0440 + fsGroup 1000');
    assert.equal(keyFileProblem(file(0o640, 0, 1000), ours), undefined);
  });

  test('refuses what anyone else could read', () => {
    assert.match(keyFileProblem(file(0o644, 0, 0), ours) ?? '', /readable by others \(mode 644\)/, 'the default 0644');
    assert.match(keyFileProblem(file(0o604, 1000, 1000), ours) ?? '', /readable by others/);
    assert.match(keyFileProblem(file(0o440, 0, 0), ours) ?? '', /open to group 0/, 'a group that is not ours');
    assert.match(keyFileProblem(file(0o640, 1000, 1000), ours) ?? '', /open to group 1000/, 'not root-owned');
    assert.match(keyFileProblem(file(0o460, 0, 1000), ours) ?? '', /open to group/, 'group-writable');
  });
});
