import { setStockOnHand } from '../domain/catalog';
import type { Db } from './db';

/** The demo catalog: 3 categories, 10 products, zh-TW names, integer TWD prices. */
export const DEMO_CATEGORIES = [
  { slug: 'tea', name: '茶飲', sort_order: 1 },
  { slug: 'snacks', name: '點心', sort_order: 2 },
  { slug: 'goods', name: '選物', sort_order: 3 },
];

export const demoImageUrl = (name: string) => `https://images.unsplash.com/${name}?w=1024&h=666&fit=crop&auto=format`;

export const DEMO_PRODUCTS = [
  { sku: 'TEA-001', category: 'tea', name: '阿里山高山烏龍茶（150g）', description: '海拔 1,400 公尺茶園，清香回甘，適合冷泡。', price: 680, image: 'photo-1556679343-c7306c1976bc', stock: 30 },
  { sku: 'TEA-002', category: 'tea', name: '日月潭紅玉紅茶（75g）', description: '台茶 18 號，帶肉桂與薄荷香氣。', price: 520, image: 'photo-1576092768241-dec231879fc3', stock: 25 },
  { sku: 'TEA-003', category: 'tea', name: '東方美人茶禮盒', description: '小綠葉蟬叮咬的蜜香，送禮自用兩相宜。', price: 1280, image: 'photo-1544787219-7f47ccb76574', stock: 8 },
  { sku: 'SNK-001', category: 'snacks', name: '鳳梨酥（12 入）', description: '土鳳梨內餡，酸甜不膩，奶油酥皮。', price: 450, image: 'photo-1558961363-fa8fdf82db35', stock: 40 },
  { sku: 'SNK-002', category: 'snacks', name: '牛軋糖綜合包', description: '原味、抹茶、蔓越莓三種口味。', price: 320, image: 'photo-1582058091505-f87a2e55a40f', stock: 35 },
  { sku: 'SNK-003', category: 'snacks', name: '手工蛋捲（原味）', description: '每日新鮮烘焙，酥脆蛋香。', price: 280, image: 'photo-1499636136210-6f4ee915583e', stock: 5 },
  { sku: 'GDS-001', category: 'goods', name: '台灣檜木杯墊（2 入）', description: '阿里山檜木，天然香氣。', price: 390, image: 'photo-1610701596007-11502861dcfa', stock: 15 },
  { sku: 'GDS-002', category: 'goods', name: '客家花布提袋', description: '牡丹花布，手工車縫，耐用好收納。', price: 590, image: 'photo-1591561954557-26941169b49e', stock: 12 },
  { sku: 'GDS-003', category: 'goods', name: '陶瓷茶杯組（4 入）', description: '鶯歌窯燒，溫潤釉色。', price: 880, image: 'photo-1514228742587-6b1558fcca3d', stock: 3 },
  { sku: 'GDS-004', category: 'goods', name: '竹編收納籃', description: '南投竹山手工編織。', price: 650, image: 'photo-1595408076683-5d0c643e4f0a', stock: 0 },
];

/** Idempotent: existing rows (and any stock the owner changed since) are left as they are. */
export async function seedDemoCatalog(db: Db): Promise<{ categories: number; products: number }> {
  return db.transaction(async (trx) => {
    const cats = await trx('categories').insert(DEMO_CATEGORIES).onConflict('slug').ignore().returning('id');
    const ids = new Map<string, number>((await trx('categories').select('id', 'slug')).map((r) => [r.slug, r.id]));
    const prods = await trx('products')
      .insert(
        DEMO_PRODUCTS.map((p, i) => ({
          sku: p.sku,
          category_id: ids.get(p.category)!,
          name: p.name,
          description: p.description,
          price: p.price,
          image_url: demoImageUrl(p.image),
          sort_order: i + 1,
        })),
      )
      .onConflict('sku')
      .ignore()
      .returning(['id', 'sku']);
    // Stock only for the products this run created: what the owner set since stays as it is.
    const stock = new Map(DEMO_PRODUCTS.map((p) => [p.sku, p.stock]));
    for (const p of prods as Array<{ id: number; sku: string }>) await setStockOnHand(trx, p.id, stock.get(p.sku)!);
    return { categories: cats.length, products: prods.length };
  });
}
