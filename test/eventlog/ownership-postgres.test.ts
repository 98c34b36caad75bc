import { openPostgresStore } from '../../src/eventlog/postgres.js';
import { describePostgres, freshDatabase } from '../support/scaleout.js';
import { ownershipContract } from './ownership-contract.js';

describePostgres('Postgres ownership', () => {
  ownershipContract('PostgresEventStore', async () => {
    const url = await freshDatabase();
    const [a, b, c] = [0, 1, 2].map(() => openPostgresStore({ url })) as [
      ReturnType<typeof openPostgresStore>,
      ReturnType<typeof openPostgresStore>,
      ReturnType<typeof openPostgresStore>,
    ];
    return {
      a,
      b,
      c,
      cleanup: async () => {
        await Promise.all([a.close(), b.close(), c.close()]);
      },
    };
  });
});
