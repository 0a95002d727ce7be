/**
 * The controller registry: name -> factory. `--controllers` selects from these names, which are
 * kube-controller-manager's names for the same loops, so existing flags carry over.
 */
import type { ControllerContext, Runnable } from './context.ts';
import { ENDPOINTS_CONTROLLER_NAME, newEndpointsController } from './endpoints/controller.ts';
import { ENDPOINTSLICE_CONTROLLER_NAME, newEndpointSliceController } from './endpointslice/controller.ts';
import { MIRRORING_CONTROLLER_NAME, newMirroringController } from './endpointslicemirroring/controller.ts';

export interface ControllerDescriptor {
  name: string;
  enabledByDefault: boolean;
  create(ctx: ControllerContext): Runnable;
}

export const CONTROLLERS: readonly ControllerDescriptor[] = [
  { name: ENDPOINTS_CONTROLLER_NAME, enabledByDefault: true, create: newEndpointsController },
  { name: ENDPOINTSLICE_CONTROLLER_NAME, enabledByDefault: true, create: newEndpointSliceController },
  { name: MIRRORING_CONTROLLER_NAME, enabledByDefault: true, create: newMirroringController },
];
