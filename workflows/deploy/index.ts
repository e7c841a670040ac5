// The deploy workflow family: the workflow (deploy.ts) and what clients send it (messages.ts).
export { deploy } from './deploy';
export {
  attachUpdate,
  autoscaleUpdate,
  extendTtlSignal,
  extendUpdate,
  rolloutUpdate,
  scaleUpdate,
  statusQuery,
  teardownSignal,
  teardownUpdate,
} from './messages';
