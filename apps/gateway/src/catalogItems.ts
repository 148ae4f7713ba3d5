/** One product of the demo catalog. */
export interface CatalogItem {
  readonly id: number;
  readonly name: string;
  readonly category: string;
  readonly price: number;
}

const ADJECTIVES = [
  'Alpine',
  'Amber',
  'Arctic',
  'Azure',
  'Bright',
  'Cedar',
  'Coral',
  'Crimson',
  'Dusk',
  'Ember',
  'Fern',
  'Frost',
  'Golden',
  'Harbor',
  'Indigo',
  'Ivory',
  'Jade',
  'Lunar',
  'Maple',
  'Misty',
];
const PRODUCTS: ReadonlyArray<readonly [string, string]> = [
  ['Tent', 'camping'],
  ['Lamp', 'home'],
  ['Kettle', 'kitchen'],
  ['Jacket', 'apparel'],
  ['Backpack', 'travel'],
  ['Compass', 'travel'],
  ['Lantern', 'camping'],
  ['Mug', 'kitchen'],
  ['Blanket', 'home'],
  ['Boots', 'apparel'],
  ['Stove', 'camping'],
  ['Hammock', 'camping'],
];

/** The demo catalog: `count` deterministic items with ids 1…count. */
export function catalogItems(count = 60): CatalogItem[] {
  const items: CatalogItem[] = [];
  for (let id = 1; id <= count; id++) {
    const [product, category] = PRODUCTS[(id * 5) % PRODUCTS.length]!;
    items.push({
      id,
      name: `${ADJECTIVES[id % ADJECTIVES.length]} ${product}`,
      category,
      price: 5 + ((id * 37) % 200) + 0.99,
    });
  }
  return items;
}

/** Case-insensitive match on name or category. */
export function matches(item: CatalogItem, query: string): boolean {
  const q = query.toLowerCase();
  return item.name.toLowerCase().includes(q) || item.category.includes(q);
}
