/**
 * The Reflect metadata API that @peculiar/x509's dependency injection (tsyringe) insists on at import time.
 * Its usual provider, the `reflect-metadata` package, is not installed here, so this installs the four
 * functions tsyringe calls (getMetadata, getOwnMetadata, defineMetadata, metadata), and only when nothing
 * else has. Replace this file with `import 'reflect-metadata'` once that package is a dependency.
 */
type MetadataStore = Map<unknown, unknown>;
type Target = object;

interface ReflectWithMetadata {
  getMetadata?: (key: unknown, target: Target) => unknown;
  getOwnMetadata?: (key: unknown, target: Target) => unknown;
  defineMetadata?: (key: unknown, value: unknown, target: Target) => void;
  metadata?: (key: unknown, value: unknown) => (target: Target) => void;
}

const reflect = Reflect as unknown as ReflectWithMetadata;

if (!reflect.getMetadata) {
  const stores = new WeakMap<Target, MetadataStore>();
  const own = (key: unknown, target: Target) => stores.get(target)?.get(key);
  reflect.getOwnMetadata = own;
  reflect.getMetadata = (key, target) => {
    for (let t: Target | null = target; t; t = Object.getPrototypeOf(t) as Target | null) {
      if (stores.get(t)?.has(key)) return own(key, t);
    }
    return undefined;
  };
  reflect.defineMetadata = (key, value, target) => {
    const store = stores.get(target) ?? new Map<unknown, unknown>();
    store.set(key, value);
    stores.set(target, store);
  };
  reflect.metadata = (key, value) => (target) => reflect.defineMetadata!(key, value, target);
}

export {};
