import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { HttpError } from '@canary/service-kit';
import { accountCreatedEmail } from '../outbox/account-email.js';
import { hashPassword } from '../users/password-hash.js';
import { isValidPassword } from '../users/password-policy.js';
import {
  ApiError,
  bodyErrors,
  commonErrors,
  CreateUserBody,
  defaultRole,
  EmptyBody,
  UpdateUserBody,
  UsernameParams,
  UserView,
} from '../users/user-schemas.js';
import type { User, UsersRepository } from '../users/users-repository.js';

export interface UserRoutesOptions {
  users: UsersRepository;
  /** Version reported as `appversion` in every user. */
  appVersion: string;
  /** Called once a new user and its e-mail are committed: the outbox should send it now. */
  onUserCreated(): void;
}

const notFound = (username: string) => new HttpError(404, `User with user name ${username} doesn't exist!`);
const usernameTaken = (username: string) => new HttpError(400, `User with user name ${username} already exists!`);
const emailTaken = (email: string) => new HttpError(400, `User with email ${email} already exists!`);

/** The original's user routes, with its paths, status codes and messages. */
export const userRoutes: FastifyPluginAsyncTypebox<UserRoutesOptions> = async (app, { users, appVersion, onUserCreated }) => {
  // Field by field rather than a spread: the /users reply is serialized without its schema (below), so only
  // what is named here can ever reach a client.
  const view = (user: User): UserView => ({
    username: user.username,
    email: user.email,
    role: user.role,
    enabled: user.enabled,
    firstname: user.firstname,
    lastname: user.lastname,
    appversion: appVersion,
  });

  app.get('/users', { schema: { response: { 200: Type.Array(UserView), ...commonErrors } } }, async (_request, reply) => {
    const list = (await users.list()).map(view);
    // fast-json-stringify checks each of a user's strings for characters to escape in JavaScript; for a list of
    // 100 users that was a third of this route's CPU (docs/benchmarks.md). The engine's JSON.stringify does it
    // natively, and `view` already holds exactly the schema's fields.
    return reply.type('application/json; charset=utf-8').serializer(JSON.stringify).send(list);
  });

  app.get(
    '/user/:username',
    { schema: { params: UsernameParams, response: { 200: UserView, 404: ApiError, ...commonErrors } } },
    async (request) => {
      const user = await users.find(request.params.username);
      if (!user) throw notFound(request.params.username);
      return view(user);
    },
  );

  app.post(
    '/user',
    { schema: { body: CreateUserBody, response: { 200: EmptyBody, ...commonErrors, ...bodyErrors } } },
    async (request, reply) => {
      const body = request.body;
      if (!isValidPassword(body.password)) throw new HttpError(400, 'User Password is invalid');
      const result = await users.create(
        {
          username: body.username,
          email: body.email,
          role: body.role ?? defaultRole,
          enabled: body.enabled ?? true,
          firstname: body.firstname,
          lastname: body.lastname ?? '',
          passwordHash: await hashPassword(body.password),
        },
        accountCreatedEmail(body.firstname, body.email),
      );
      if (!result.created) throw result.conflict === 'username' ? usernameTaken(body.username) : emailTaken(body.email);
      onUserCreated();
      return reply.code(200).send();
    },
  );

  app.put(
    '/user',
    { schema: { body: UpdateUserBody, response: { 200: EmptyBody, 404: ApiError, ...commonErrors, ...bodyErrors } } },
    async (request, reply) => {
      const { username, email, firstname, lastname } = request.body;
      const result = await users.update(username, { email, firstname, lastname: lastname ?? '' });
      if (!result.updated) throw result.reason === 'not-found' ? notFound(username) : emailTaken(email);
      return reply.code(200).send();
    },
  );

  app.delete(
    '/user/:username',
    { schema: { params: UsernameParams, response: { 200: EmptyBody, 404: ApiError, ...commonErrors } } },
    async (request, reply) => {
      if (!(await users.remove(request.params.username))) throw notFound(request.params.username);
      return reply.code(200).send();
    },
  );

  // A GET that changes state, as in the original: its clients call it this way. No implicit HEAD route, though:
  // a link checker or proxy sending HEAD must not flip accounts.
  app.get(
    '/status/:username',
    { exposeHeadRoute: false, schema: { params: UsernameParams, response: { 200: EmptyBody, 404: ApiError, ...commonErrors } } },
    async (request, reply) => {
      if (!(await users.toggleEnabled(request.params.username))) throw notFound(request.params.username);
      return reply.code(200).send();
    },
  );
};
