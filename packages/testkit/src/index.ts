export { createTestDatabase, databaseEnv, testDatabaseSettings, type DatabaseSettings, type TestDatabase } from './database.js';
export { startSmtpServer, type ReceivedMail, type TestSmtpOptions, type TestSmtpServer } from './smtp.js';
export { createSelfSignedCertificate, type SelfSignedCertificate } from './tls-certificate.js';
export { startXrayDaemon, xrayProtocolHeader, type SegmentFilter, type XrayDaemon, type XrayDocument } from './xray-daemon.js';
export { expectKitError, fieldsOf, parseRaw, rawHttp, send, type Answer, type KitError, type SendOptions } from './raw-http.js';
