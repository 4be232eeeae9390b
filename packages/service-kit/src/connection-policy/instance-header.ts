/** Response header through which a service names the instance (pod, process) that answered. */
export const instanceHeader = 'x-instance-id';
