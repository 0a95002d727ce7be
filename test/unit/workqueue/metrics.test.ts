import { expect } from 'chai';
import { Registry } from 'prom-client';
import { FakeClock } from '../../../shared/clock.ts';
import { WorkQueue } from '../../../shared/workqueue/index.ts';

/** The value of `metricName` (a series name, e.g. `x_sum`) for the queue labelled `name`. */
async function value(registry: Registry, family: string, name: string, metricName = family): Promise<number> {
  const metric = registry.getSingleMetric(family);
  if (!metric) throw new Error(`${family} is not registered`);
  const values: Array<{
    value: number;
    labels: Record<string, string | number | undefined>;
    metricName?: string;
  }> = (await metric.get()).values;
  const found = values.find((v) => v.labels.name === name && (v.metricName ?? family) === metricName);
  if (!found) throw new Error(`${metricName}{name=${name}} has no value`);
  return found.value;
}

function setup(): { clock: FakeClock; registry: Registry; q: WorkQueue<string> } {
  const clock = new FakeClock(0);
  const registry = new Registry();
  const q = new WorkQueue<string>({ clock, metrics: { registry, name: 'q', controller: 'ctl' } });
  return { clock, registry, q };
}

describe('workqueue metrics', () => {
  it('registers all seven workqueue metrics on the given registry, labelled name and controller', async () => {
    const { registry } = setup();
    const text = await registry.metrics();
    for (const name of [
      'workqueue_depth',
      'workqueue_adds_total',
      'workqueue_queue_duration_seconds',
      'workqueue_work_duration_seconds',
      'workqueue_unfinished_work_seconds',
      'workqueue_longest_running_processor_seconds',
      'workqueue_retries_total',
    ]) {
      expect(text).to.contain(`# TYPE ${name} `);
    }
    expect(text).to.contain('workqueue_depth{name="q",controller="ctl"} 0');
  });

  it('depth counts queued items and adds count non-collapsed adds', async () => {
    const { registry, q } = setup();
    q.add('a');
    q.add('b');
    q.add('a');
    expect(await value(registry, 'workqueue_depth', 'q')).to.equal(2);
    expect(await value(registry, 'workqueue_adds_total', 'q')).to.equal(2);
    await q.get();
    expect(await value(registry, 'workqueue_depth', 'q')).to.equal(1);
  });

  it('observes queue duration from add to get and work duration from get to done on the clock', async () => {
    const { clock, registry, q } = setup();
    q.add('a');
    clock.step(1500);
    await q.get();
    clock.step(250);
    q.done('a');
    const qd = 'workqueue_queue_duration_seconds';
    const wd = 'workqueue_work_duration_seconds';
    expect(await value(registry, qd, 'q', `${qd}_sum`)).to.equal(1.5);
    expect(await value(registry, qd, 'q', `${qd}_count`)).to.equal(1);
    expect(await value(registry, wd, 'q', `${wd}_sum`)).to.equal(0.25);
    expect(await value(registry, wd, 'q', `${wd}_count`)).to.equal(1);
  });

  it('queue duration runs from the first of collapsed adds', async () => {
    const { clock, registry, q } = setup();
    q.add('a');
    clock.step(1000);
    q.add('a');
    clock.step(1000);
    await q.get();
    const qd = 'workqueue_queue_duration_seconds';
    expect(await value(registry, qd, 'q', `${qd}_sum`)).to.equal(2);
  });

  it('longest-running and unfinished work are computed at scrape time from in-flight items', async () => {
    const { clock, registry, q } = setup();
    q.add('a');
    q.add('b');
    await q.get();
    clock.step(3000);
    await q.get();
    clock.step(1000);
    // 'a' has run 4 s, 'b' 1 s: nothing recorded them since, only the scrape computes this.
    expect(await value(registry, 'workqueue_unfinished_work_seconds', 'q')).to.equal(5);
    expect(await value(registry, 'workqueue_longest_running_processor_seconds', 'q')).to.equal(4);
    clock.step(1000);
    expect(await value(registry, 'workqueue_longest_running_processor_seconds', 'q')).to.equal(5);
    q.done('a');
    q.done('b');
    expect(await value(registry, 'workqueue_unfinished_work_seconds', 'q')).to.equal(0);
    expect(await value(registry, 'workqueue_longest_running_processor_seconds', 'q')).to.equal(0);
  });

  it('a second queue on the same registry reuses the metric objects with its own labels', async () => {
    const { clock, registry, q } = setup();
    const other = new WorkQueue<string>({ clock, metrics: { registry, name: 'other' } });
    q.add('a');
    other.add('x');
    other.add('y');
    expect(await value(registry, 'workqueue_adds_total', 'q')).to.equal(1);
    expect(await value(registry, 'workqueue_adds_total', 'other')).to.equal(2);
    expect(await registry.metrics()).to.contain('workqueue_adds_total{name="other",controller="other"} 2');
    await other.get();
    clock.step(2000);
    expect(await value(registry, 'workqueue_longest_running_processor_seconds', 'other')).to.equal(2);
    expect(await value(registry, 'workqueue_longest_running_processor_seconds', 'q')).to.equal(0);
  });

  it('a queue without a registry records nothing and touches no registry', async () => {
    const q = new WorkQueue<string>({ clock: new FakeClock(0) });
    q.add('a');
    await q.get();
    q.done('a');
    const { register } = await import('prom-client');
    expect(register.getSingleMetric('workqueue_depth')).to.equal(undefined);
  });
});
