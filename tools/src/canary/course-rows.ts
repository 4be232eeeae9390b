/** The course's canary table: notification V1 and V2 replicas, and the V2 share of traffic each row should give. */
export interface CourseRow {
  v1: number;
  v2: number;
  /** Expected V2 share in percent. */
  v2Percent: number;
}

export const courseRows: readonly CourseRow[] = [
  { v1: 4, v2: 0, v2Percent: 0 },
  { v1: 3, v2: 1, v2Percent: 25 },
  { v1: 2, v2: 2, v2Percent: 50 },
  { v1: 1, v2: 3, v2Percent: 75 },
  { v1: 0, v2: 4, v2Percent: 100 },
];

/** The policies user management can use towards the notification Service (NOTIFICATION_CONNECTION_POLICY). */
export const connectionPolicies = ['instance-balanced', 'keep-alive', 'per-request'] as const;
export type ConnectionPolicy = (typeof connectionPolicies)[number];
