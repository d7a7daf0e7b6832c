import { authorizeStep } from './step-authorize.ts';
import { confirmStep } from './step-confirm.ts';
import type { SagaStepDefinition } from './step-definition.ts';
import { reserveStep } from './step-reserve.ts';
import { validateStep } from './step-validate.ts';

/** The saga's steps in the order they run forward. */
export const STEPS: readonly SagaStepDefinition[] = [validateStep, reserveStep, authorizeStep, confirmStep];
