/**
 * The controller registry: name -> factory. `--controllers` selects from these names, which are
 * kube-controller-manager's names for the same loops, so existing flags carry over.
 */
import type { AdmissionContext, ControllerContext, Runnable } from './context.ts';
import type { ServiceAdmissionPart } from './serviceadmission.ts';
import { ENDPOINTS_CONTROLLER_NAME, newEndpointsController } from './endpoints/controller.ts';
import { ENDPOINTSLICE_CONTROLLER_NAME, newEndpointSliceController } from './endpointslice/controller.ts';
import { MIRRORING_CONTROLLER_NAME, newMirroringController } from './endpointslicemirroring/controller.ts';
import {
  CLUSTERIP_CONTROLLER_NAME,
  newClusterIPAdmission,
  newClusterIPController,
} from './clusterip/controller.ts';
import {
  NODEPORT_CONTROLLER_NAME,
  newNodePortAdmission,
  newNodePortController,
} from './nodeport/controller.ts';
import {
  LOADBALANCER_CONTROLLER_NAME,
  newLoadBalancerAdmission,
  newLoadBalancerController,
} from './loadbalancer/controller.ts';

export interface ControllerDescriptor {
  name: string;
  /**
   * The allocation controllers are off by default: they need the RangeAllocation CRD and the
   * webhook registration (manifests/), and a cluster whose API server allocates alone works
   * without them. kube-controller-manager keeps such controllers opt-in the same way.
   */
  enabledByDefault: boolean;
  /** Needs the service ranges resolved (and checked against the cluster's) before it is built. */
  allocates?: boolean;
  create(ctx: ControllerContext): Runnable;
  /** Its part of the Service webhook (built in the webhook's worker thread). */
  admission?(ctx: AdmissionContext): ServiceAdmissionPart;
}

export const CONTROLLERS: readonly ControllerDescriptor[] = [
  { name: ENDPOINTS_CONTROLLER_NAME, enabledByDefault: true, create: newEndpointsController },
  { name: ENDPOINTSLICE_CONTROLLER_NAME, enabledByDefault: true, create: newEndpointSliceController },
  { name: MIRRORING_CONTROLLER_NAME, enabledByDefault: true, create: newMirroringController },
  {
    name: CLUSTERIP_CONTROLLER_NAME,
    enabledByDefault: false,
    allocates: true,
    create: newClusterIPController,
    admission: newClusterIPAdmission,
  },
  {
    name: NODEPORT_CONTROLLER_NAME,
    enabledByDefault: false,
    allocates: true,
    create: newNodePortController,
    admission: newNodePortAdmission,
  },
  {
    // Off by default: in a cloud cluster the cloud provider's service controller owns these.
    name: LOADBALANCER_CONTROLLER_NAME,
    enabledByDefault: false,
    create: newLoadBalancerController,
    admission: newLoadBalancerAdmission,
  },
];
