/**
 * Drops repeated addresses, comparing them case-insensitively and keeping the first spelling and the order.
 * The whole address is compared, local part included: mailboxes that differ only by case are one person in practice.
 */
export function uniqueAddresses(addresses: readonly string[]): string[] {
  const seen = new Set<string>();
  const result: string[] = [];
  for (const address of addresses) {
    const key = address.toLowerCase();
    if (seen.has(key)) continue;
    seen.add(key);
    result.push(address);
  }
  return result;
}
