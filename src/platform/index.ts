export { type Config, ConfigError, loadConfig, MODULES, type ModuleName, SETTINGS } from './config/index.ts';
export type { AppContext, MercatoModule } from './context.ts';
export { type ContextOverrides, closeContext, createContext } from './runtime.ts';
export {
  createSecretBox,
  type SecretBox,
  SecretUnreadableError,
  secretBoxOf,
} from './secrets.ts';
export { configuredSecretsKey, deriveKey, deriveServerKey, signingKeyMaterial } from './server-keys.ts';
export { type StateMachine, stateMachine, type Transitions } from './state-machine.ts';
export { cutText } from './text.ts';
export { signWebhook, verifyWebhook } from './webhook-signature.ts';
