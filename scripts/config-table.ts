/** Prints the README's configuration table from the settings the code declares: `node scripts/config-table.ts`. */
import { configTable } from '../src/platform/config/config-table.ts';

console.log(configTable());
