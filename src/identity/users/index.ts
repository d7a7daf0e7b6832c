export { erasedEmail, eraseUser } from './erase-user.ts';
export { createProfileCache, type ProfileCache, USER_CHANGES_CHANNEL } from './profile-cache.ts';
export { profileRoutes } from './profile-routes.ts';
export { changePassword, setPasswordByEmail } from './set-password.ts';
export { staffRoutes } from './staff-routes.ts';
export {
  createUser,
  findUserByEmail,
  findUserById,
  type IdentityDb,
  isUniqueViolation,
  type NewUser,
  normaliseEmail,
  type User,
  type UserCredentials,
  type UserStatus,
} from './user-store.ts';
