/**
 * The access-key proof of the handshake (HELLO → CHALLENGE → AUTH). Pure: the caller supplies the
 * TLS exporter bytes (`exportAuthEkm(tlsSocket)` on each side, after the handshake) and the nonces;
 * nothing here owns a socket.
 *
 *   proof = HMAC-SHA256(key = accessKey, "lanstream-auth-v1" || ekm || clientNonce || serverNonce)
 *
 * Why this shape: the key never crosses the wire, so a passive listener (or a server impostor the
 * user was tricked into trusting) learns nothing it can replay. The exporter value is unique to one
 * TLS session, so a proof relayed by a machine in the middle into its own session with the real
 * server does not verify there. Both nonces make every proof fresh even if an exporter repeated.
 * All inputs after the context string have fixed lengths, so the concatenation is unambiguous.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { NONCE_BYTES, PROOF_BYTES } from './constants.js';

/** RFC 5705/8446 exporter label; must start with "EXPORTER" (private-use labels do by convention). */
export const AUTH_EXPORTER_LABEL = 'EXPORTER-lanstream-auth';
export const AUTH_EKM_BYTES = 32;
/** Domain separation: a future proof format gets a new string, never a reinterpretation. */
export const AUTH_CONTEXT = 'lanstream-auth-v1';

/** Structural slice of tls.TLSSocket, so this module needs no socket to be tested. */
export interface KeyingMaterialExporter {
  exportKeyingMaterial(length: number, label: string, context: Buffer): Buffer;
}

/**
 * The session-unique value both ends mix into the proof. Both sides must call this same function:
 * in TLS 1.3 an empty context equals "no context" (RFC 8446 §7.5), but in TLS 1.2 they differ.
 */
export function exportAuthEkm(tlsSocket: KeyingMaterialExporter): Buffer {
  return tlsSocket.exportKeyingMaterial(AUTH_EKM_BYTES, AUTH_EXPORTER_LABEL, Buffer.alloc(0));
}

export function newNonce(): Buffer {
  return randomBytes(NONCE_BYTES);
}

/** HELLO carries clientNonce as hex; returns null for anything but exactly NONCE_BYTES of hex. */
export function decodeNonceHex(hex: string): Buffer | null {
  if (typeof hex !== 'string' || hex.length !== NONCE_BYTES * 2 || !/^[0-9a-fA-F]+$/.test(hex)) return null;
  return Buffer.from(hex, 'hex');
}

function checkLengths(ekm: Buffer, clientNonce: Buffer, serverNonce: Buffer): boolean {
  return ekm.length === AUTH_EKM_BYTES && clientNonce.length === NONCE_BYTES && serverNonce.length === NONCE_BYTES;
}

/** 32-byte proof. Throws a TypeError on wrong input lengths: that is a bug in the caller. */
export function computeAuthProof(accessKey: string, ekm: Buffer, clientNonce: Buffer, serverNonce: Buffer): Buffer {
  if (!checkLengths(ekm, clientNonce, serverNonce)) {
    throw new TypeError(
      `computeAuthProof: expected ${AUTH_EKM_BYTES}-byte ekm and ${NONCE_BYTES}-byte nonces, got ` +
        `${ekm.length}/${clientNonce.length}/${serverNonce.length}`,
    );
  }
  return createHmac('sha256', accessKey).update(AUTH_CONTEXT, 'utf8').update(ekm).update(clientNonce).update(serverNonce).digest();
}

/**
 * Constant-time check of a proof received in AUTH. Never throws: a proof or nonce of the wrong
 * length (hostile or broken peer) is simply not valid.
 */
export function verifyAuthProof(accessKey: string, ekm: Buffer, clientNonce: Buffer, serverNonce: Buffer, proof: Buffer): boolean {
  if (proof.length !== PROOF_BYTES || !checkLengths(ekm, clientNonce, serverNonce)) return false;
  return timingSafeEqual(computeAuthProof(accessKey, ekm, clientNonce, serverNonce), proof);
}
