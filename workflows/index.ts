// Every workflow the control worker runs; the bundler starts here.
export * from './batch-score';
export * from './deploy';
export * from './janitor';
export * from './gpu-pool';
