// The record of an event as it travels after reassembly (routing, the aux pipe, the writers): its type and payload.

export interface EventRecord {
  type: number;
  /** The kernel payload text: `audit(SEC.MSEC:SERIAL): body`. */
  payload: Buffer;
}
