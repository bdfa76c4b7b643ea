import { BadRequestException, ValidationPipe, type ArgumentMetadata } from '@nestjs/common';

/** Deepest nesting of objects and arrays a request body may have; the module's bodies are flat. */
export const MAX_BODY_DEPTH = 32;

/** Whether `value` nests objects or arrays more than `limit` levels deep. Iterative: safe at any depth. */
export function nestedDeeperThan(value: unknown, limit: number): boolean {
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [current, depth] = stack.pop()!;
    if (typeof current !== 'object' || current === null) continue;
    if (depth >= limit) return true;
    for (const child of Object.values(current)) stack.push([child, depth + 1]);
  }
  return false;
}

/**
 * The module's `ValidationPipe`: refuses a body nested deeper than {@link MAX_BODY_DEPTH} with 400
 * before validating it. class-transformer copies unknown properties recursively, so a body of a
 * few thousand nested arrays (far below any body-size limit) would otherwise overflow the stack
 * and answer 500.
 */
export class OtpValidationPipe extends ValidationPipe {
  override async transform(value: unknown, metadata: ArgumentMetadata): Promise<unknown> {
    if (metadata.type === 'body' && nestedDeeperThan(value, MAX_BODY_DEPTH)) {
      throw new BadRequestException(['request body is nested too deeply']);
    }
    return super.transform(value, metadata);
  }
}
