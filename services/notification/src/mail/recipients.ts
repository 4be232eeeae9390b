/**
 * Drops repeated addresses, comparing them case-insensitively and keeping the first spelling and the order.
 * The whole address is compared, local part included: mailboxes that differ only by case are one person in practice.
 */
export function uniqueAddresses(addresses: readonly string[], seen = new Set<string>()): string[] {
  const result: string[] = [];
  for (const address of addresses) {
    const key = address.toLowerCase();
    if (seen.has(key)) continue;
    seen.add(key);
    result.push(address);
  }
  return result;
}

export interface Recipients {
  to: string[];
  cc: string[];
  bcc: string[];
}

/**
 * The three lists with every address once over all of them, in its first place (to, then cc, then bcc), as mail
 * clients do: the person gets one copy, and the server's recipient limit counts people, not mentions.
 */
export function distinctRecipients(to: readonly string[], cc: readonly string[], bcc: readonly string[]): Recipients {
  const seen = new Set<string>();
  return { to: uniqueAddresses(to, seen), cc: uniqueAddresses(cc, seen), bcc: uniqueAddresses(bcc, seen) };
}
