export {
  type Config,
  ConfigError,
  loadConfig,
  MODULES,
  type ModuleName,
  SETTINGS,
  type Setting,
} from './config.ts';
export { configTable } from './config-table.ts';
