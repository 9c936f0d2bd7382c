import { section } from './sections/analysis-overhead.ts';

const rows = await section.run({ quick: process.argv.includes('--quick'), log: (l) => console.error(l) });
console.log(JSON.stringify(rows, null, 1));
process.exit(0);
