import { FlagError } from '../../../shared/config.ts';

/** The FlagError `fn` throws; fails the test when it throws nothing or something else. */
export function flagError(fn: () => unknown): FlagError {
  try {
    fn();
  } catch (err) {
    if (err instanceof FlagError) return err;
    throw err;
  }
  throw new Error('expected a FlagError');
}
