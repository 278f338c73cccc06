// A first-in first-out array whose front is dropped in bulk: dropping costs what it releases, not what stays.

/**
 * Items pushed at the back and dropped from the front. A splice of an array's front moves every item behind it, once
 * per drop (a queue drained one ack at a time was quadratic); here the front only moves a head, and the spent slots
 * are cut off once they are half the array, so each item is moved at most once more.
 */
export class Fifo<T> {
  private items: (T | undefined)[] = [];
  private head = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  push(item: T): void {
    this.items.push(item);
  }

  /** The item `i` places from the front (undefined past the back). */
  at(i: number): T | undefined {
    return i >= 0 ? this.items[this.head + i] : undefined;
  }

  /** The item at the back, or undefined when empty. */
  last(): T | undefined {
    return this.length > 0 ? this.items[this.items.length - 1] : undefined;
  }

  /** Drops the first `n` items (at most all of them). */
  drop(n: number): void {
    const end = Math.min(this.head + n, this.items.length);
    for (let i = this.head; i < end; i++) this.items[i] = undefined;
    this.head = end;
    if (this.head === this.items.length) this.clear();
    else if (this.head >= 1024 && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
  }

  clear(): void {
    this.items = [];
    this.head = 0;
  }
}
